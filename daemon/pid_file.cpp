#include "daemon/pid_file.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <stdexcept>

#include <fmt/format.h>

#include <portico/text.hpp>

namespace portico {

std::string check_pid_file(const std::string& path) {
  const std::string dir = std::filesystem::path(path).parent_path().string();
  struct stat st {};
  if (stat(dir.c_str(), &st) != 0) return fmt::format("directory {}: {}", escape_text(dir), std::strerror(errno));
  if (!S_ISDIR(st.st_mode)) return fmt::format("{} is not a directory", escape_text(dir));
  if (access(dir.c_str(), W_OK) != 0) return fmt::format("directory {}: {}", escape_text(dir), std::strerror(errno));
  return {};
}

PidFile::PidFile(std::string path) : path_(std::move(path)) {
  const std::string tmp = path_ + ".tmp." + std::to_string(getpid());
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << getpid() << '\n';
    if (!out.flush()) {
      std::remove(tmp.c_str());
      throw std::runtime_error("cannot write pid file " + escape_text(path_) + ": " + std::strerror(errno));
    }
  }
  if (std::rename(tmp.c_str(), path_.c_str()) != 0) {
    const std::string why = std::strerror(errno);
    std::remove(tmp.c_str());
    throw std::runtime_error("cannot write pid file " + escape_text(path_) + ": " + why);
  }
}

PidFile::~PidFile() {
  std::ifstream in(path_);
  pid_t pid = 0;
  if (in >> pid && pid == getpid()) std::remove(path_.c_str());
}

}  // namespace portico
