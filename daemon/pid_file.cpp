#include "daemon/pid_file.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <random>
#include <memory>
#include <utility>

#include <fmt/format.h>

#include <portico/text.hpp>

namespace portico {

namespace {

std::string directory_of(const std::string& path) { return std::filesystem::path(path).parent_path().string(); }

// Whether the directory open as `fd` may hold the pid file.
Result<void> check_directory(int fd, const std::string& dir, uid_t owner) {
  struct stat st {};
  if (fstat(fd, &st) != 0) return fail("directory {}: {}", escape_text(dir), std::strerror(errno));
  if (st.st_uid != 0 && st.st_uid != owner) {
    return fail("directory {} belongs to uid {}, who could replace the pid file: use a directory of root's "
                       "(or of the user porticod serves as)",
                       escape_text(dir), st.st_uid);
  }
  if ((st.st_mode & (S_IWGRP | S_IWOTH)) != 0) {
    return fail("directory {} is writable by {}, who could replace the pid file: use a directory only its "
                       "owner may write (mode 0755, as /run)",
                       escape_text(dir), (st.st_mode & S_IWOTH) != 0 ? "every user" : "its group");
  }
  if (faccessat(fd, ".", W_OK, AT_EACCESS) != 0) {
    return fail("directory {}: {}", escape_text(dir), std::strerror(errno));
  }
  return {};
}

Result<int> open_directory(const std::string& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return fail("directory {}: {}", escape_text(dir), std::strerror(errno));
  return fd;
}

}  // namespace

Result<void> check_pid_file(const std::string& path, uid_t owner) {
  const std::string dir = directory_of(path);
  const auto fd = open_directory(dir);
  if (!fd) return fd.error();
  auto checked = check_directory(*fd, dir, owner);
  ::close(*fd);
  return checked;
}

Result<std::unique_ptr<PidFile>> PidFile::write(const std::string& path, uid_t owner) {
  std::unique_ptr<PidFile> file(new PidFile(path));
  if (auto written = file->write_pid(owner); !written) {
    return fail("cannot write pid file {}: {}", escape_text(path), written.error().message());
  }
  return file;
}

PidFile::PidFile(std::string path)
    : path_(std::move(path)), name_(std::filesystem::path(path_).filename().string()) {}

Result<void> PidFile::write_pid(uid_t owner) {
  const std::string dir = directory_of(path_);
  auto opened = open_directory(dir);
  if (!opened) return opened.error();
  dir_ = *opened;
  if (auto checked = check_directory(dir_, dir, owner); !checked) {
    ::close(std::exchange(dir_, -1));
    removed_ = true;
    return checked;
  }
  // A name nobody can guess, created only if nothing is there: no link
  // planted in advance is followed, nor any file truncated.
  std::random_device random;
  std::string tmp;
  int fd = -1;
  for (int attempt = 0; attempt < 100 && fd < 0; ++attempt) {
    tmp = fmt::format(".{}.{:08x}", name_, random());
    fd = ::openat(dir_, tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (fd < 0 && errno != EEXIST) break;
  }
  if (fd < 0) {
    const std::string why = std::strerror(errno);
    ::close(std::exchange(dir_, -1));
    removed_ = true;
    return fail(why);
  }
  const std::string text = std::to_string(getpid()) + "\n";
  const bool written = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()) && ::fsync(fd) == 0;
  std::string why = std::strerror(errno);
  ::close(fd);
  // rename() replaces whatever is at the name, a link included, without
  // following it; the directory's fsync makes the new name durable.
  if (!written || ::renameat(dir_, tmp.c_str(), dir_, name_.c_str()) != 0) {
    if (written) why = std::strerror(errno);
    ::unlinkat(dir_, tmp.c_str(), 0);
    ::close(std::exchange(dir_, -1));
    removed_ = true;
    return fail(why);
  }
  ::fsync(dir_);
  return {};
}

int PidFile::remove() {
  if (removed_) return 0;
  removed_ = true;
  const int fd = ::openat(dir_, name_.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return 0;  // gone already
  char buffer[32] = {};
  const ssize_t n = ::read(fd, buffer, sizeof buffer - 1);
  ::close(fd);
  // Another process's file now (a new porticod started meanwhile): its own.
  if (n <= 0 || std::to_string(getpid()) + "\n" != std::string(buffer, static_cast<std::size_t>(n))) return 0;
  return ::unlinkat(dir_, name_.c_str(), 0) == 0 ? 0 : errno;
}

PidFile::~PidFile() {
  remove();
  ::close(dir_);
}

}  // namespace portico
