# Included by the top-level CMakeLists.txt once the portico target exists:
# the install rules that turn
# `cmake --install` into a package other CMake projects use with
#
#   find_package(portico REQUIRED)
#   target_link_libraries(app PRIVATE portico::portico)
#
# Everything installed here belongs to the `development` component (porticod
# and the man pages are installed elsewhere, in the default component).

include(CMakePackageConfigHelpers)

set(portico_cmake_dir ${CMAKE_INSTALL_LIBDIR}/cmake/portico)

# portico_build_flags (warnings, sanitizers) is linked as a BUILD_INTERFACE
# only, so the exported target carries no flags of this build; its private
# dependencies (toml++) are exported as link-only and found by
# porticoConfig.cmake.
install(TARGETS portico EXPORT porticoTargets
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT development)
install(DIRECTORY ${PROJECT_SOURCE_DIR}/include/portico
  DESTINATION ${CMAKE_INSTALL_INCLUDEDIR} COMPONENT development
  FILES_MATCHING PATTERN "*.hpp")
install(EXPORT porticoTargets NAMESPACE portico:: DESTINATION ${portico_cmake_dir} COMPONENT development)

configure_package_config_file(${CMAKE_CURRENT_LIST_DIR}/porticoConfig.cmake.in
  ${PROJECT_BINARY_DIR}/porticoConfig.cmake INSTALL_DESTINATION ${portico_cmake_dir})
# Before 1.0 a minor version may change the API, so only the same
# MAJOR.MINOR satisfies a request.
write_basic_package_version_file(${PROJECT_BINARY_DIR}/porticoConfigVersion.cmake COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/porticoConfig.cmake ${PROJECT_BINARY_DIR}/porticoConfigVersion.cmake
  ${CMAKE_CURRENT_LIST_DIR}/porticoPlugin.cmake
  DESTINATION ${portico_cmake_dir} COMPONENT development)

# Inside this build, find_package(portico) (examples/plugin asks for it)
# finds the targets of this tree rather than an installed copy.
file(WRITE ${CMAKE_FIND_PACKAGE_REDIRECTS_DIR}/portico-config.cmake
     "include(\"${CMAKE_CURRENT_LIST_DIR}/porticoPlugin.cmake\")\n")
file(WRITE ${CMAKE_FIND_PACKAGE_REDIRECTS_DIR}/portico-config-version.cmake
     "set(PACKAGE_VERSION ${PROJECT_VERSION})\nset(PACKAGE_VERSION_COMPATIBLE TRUE)\nset(PACKAGE_VERSION_EXACT TRUE)\n")
