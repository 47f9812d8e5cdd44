#pragma once
// The optional pid file: written atomically once listening, removed on exit.

#include <string>

namespace portico {

// Why a pid file cannot be written at `path` (its directory is missing or
// not writable), or an empty string.
std::string check_pid_file(const std::string& path);

class PidFile {
 public:
  // Writes the current pid to `path` through a temporary file and rename(),
  // so a reader never sees a partial file. Throws std::runtime_error.
  explicit PidFile(std::string path);
  // Removes the file if it still holds this process's pid.
  ~PidFile();
  PidFile(const PidFile&) = delete;
  PidFile& operator=(const PidFile&) = delete;

 private:
  std::string path_;
};

}  // namespace portico
