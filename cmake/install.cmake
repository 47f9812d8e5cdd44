# Included by the top-level CMakeLists.txt once the portico target exists:
# the generated version header, and the install rules that turn
# `cmake --install` into a package other CMake projects use with
#
#   find_package(portico REQUIRED)
#   target_link_libraries(app PRIVATE portico::portico)
#
# Everything installed here belongs to the `development` component (porticod
# and the man pages are installed elsewhere, in the default component).

include(CMakePackageConfigHelpers)

# The version header is generated into the build tree and installed next to
# the other public headers, so that code compiled against this tree (a
# plugin, an embedding program) can state which version it was built for.
set(portico_generated_include_dir ${PROJECT_BINARY_DIR}/include)
configure_file(${CMAKE_CURRENT_LIST_DIR}/version_config.hpp.in
               ${portico_generated_include_dir}/portico/version_config.hpp @ONLY)
target_include_directories(portico PUBLIC $<BUILD_INTERFACE:${portico_generated_include_dir}>)

set(portico_cmake_dir ${CMAKE_INSTALL_LIBDIR}/cmake/portico)

# portico_build_flags (warnings, sanitizers) is linked as a BUILD_INTERFACE
# only, so the exported target carries no flags of this build; its private
# dependencies (toml++) are exported as link-only and found by
# porticoConfig.cmake.
install(TARGETS portico EXPORT porticoTargets
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT development)
install(DIRECTORY ${PROJECT_SOURCE_DIR}/include/portico ${portico_generated_include_dir}/portico
  DESTINATION ${CMAKE_INSTALL_INCLUDEDIR} COMPONENT development
  FILES_MATCHING PATTERN "*.hpp")
install(EXPORT porticoTargets NAMESPACE portico:: DESTINATION ${portico_cmake_dir} COMPONENT development)

configure_package_config_file(${CMAKE_CURRENT_LIST_DIR}/porticoConfig.cmake.in
  ${PROJECT_BINARY_DIR}/porticoConfig.cmake INSTALL_DESTINATION ${portico_cmake_dir})
# Before 1.0 a minor version may change the API, so only the same
# MAJOR.MINOR satisfies a request.
write_basic_package_version_file(${PROJECT_BINARY_DIR}/porticoConfigVersion.cmake COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/porticoConfig.cmake ${PROJECT_BINARY_DIR}/porticoConfigVersion.cmake
  DESTINATION ${portico_cmake_dir} COMPONENT development)
