// A shared object that is not a portico plugin: it lacks the entry point.

extern "C" __attribute__((visibility("default"))) int portico_test_not_a_plugin() { return 0; }
