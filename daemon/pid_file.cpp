#include "daemon/pid_file.hpp"

#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <stdexcept>

namespace portico {

PidFile::PidFile(std::string path) : path_(std::move(path)) {
  const std::string tmp = path_ + ".tmp." + std::to_string(getpid());
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << getpid() << '\n';
    if (!out.flush()) {
      std::remove(tmp.c_str());
      throw std::runtime_error("cannot write pid file " + path_ + ": " + std::strerror(errno));
    }
  }
  if (std::rename(tmp.c_str(), path_.c_str()) != 0) {
    const std::string why = std::strerror(errno);
    std::remove(tmp.c_str());
    throw std::runtime_error("cannot write pid file " + path_ + ": " + why);
  }
}

PidFile::~PidFile() {
  std::ifstream in(path_);
  pid_t pid = 0;
  if (in >> pid && pid == getpid()) std::remove(path_.c_str());
}

}  // namespace portico
