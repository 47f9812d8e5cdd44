# portico_add_plugin(TARGET SOURCES...): builds a portico plugin, a shared
# object that porticod loads with [daemon] plugins = ["/path/libTARGET.so"].
#
# A plugin compiles against portico's headers and their dependencies'
# headers, with the same compile definitions, but does not link the portico
# library: its portico symbols resolve at load time to the program that
# loads it (porticod exports them). Linking the static library instead would
# give the plugin a second copy of portico beside the program's. spdlog and
# fmt are shared libraries the program has loaded already.
#
# Part of the installed CMake package (find_package(portico)); the portico
# build itself uses it too.
function(portico_add_plugin target)
  add_library(${target} MODULE ${ARGN})
  target_compile_features(${target} PRIVATE cxx_std_20)
  target_include_directories(${target} PRIVATE $<TARGET_PROPERTY:portico::portico,INTERFACE_INCLUDE_DIRECTORIES>)
  target_compile_definitions(${target} PRIVATE $<TARGET_PROPERTY:portico::portico,INTERFACE_COMPILE_DEFINITIONS>)
  target_link_libraries(${target} PRIVATE Boost::headers spdlog::spdlog fmt::fmt)
endfunction()
