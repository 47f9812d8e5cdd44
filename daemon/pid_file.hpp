#pragma once
// The optional pid file: written once listening, removed on exit.

#include <sys/types.h>

#include <memory>
#include <string>

#include <portico/result.hpp>

namespace portico {

// Whether a pid file may be written at `path`; the error says why not: its
// directory is missing, not writable, or writable by someone other than
// root and `owner` (the user porticod serves as). Anyone else who could
// write there could replace the file, so that whoever trusts it (systemd's
// PIDFile=, a script's kill $(cat ...)) signals a process of their choice.
Result<void> check_pid_file(const std::string& path, uid_t owner);

class PidFile {
 public:
  // Checks the directory as check_pid_file() does, on the descriptor it
  // then writes through, and writes the current pid to a new temporary file
  // there (O_CREAT|O_EXCL|O_NOFOLLOW under a random name: a link planted
  // there is never followed), fsyncs it and renames it over `path`, so a
  // reader never sees a partial file.
  static Result<std::unique_ptr<PidFile>> write(const std::string& path, uid_t owner);
  // remove(), quietly.
  ~PidFile();

  // Removes the file if it still holds this process's pid, through the
  // directory opened at start. Returns the errno when it cannot (after
  // dropping root, a directory of root's no longer lets it), else 0.
  int remove();
  const std::string& path() const { return path_; }
  PidFile(const PidFile&) = delete;
  PidFile& operator=(const PidFile&) = delete;

 private:
  explicit PidFile(std::string path);
  Result<void> write_pid(uid_t owner);

  std::string path_;
  std::string name_;  // within the directory
  int dir_ = -1;      // the directory, opened before writing
  bool removed_ = false;
};

}  // namespace portico
