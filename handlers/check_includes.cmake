# Fails when a handler source includes anything but <system and library
# headers>, <portico/...> public headers, or "file.hpp" of this directory.
# Run by the build (handlers/CMakeLists.txt) with -DDIR=<handlers directory>.
file(GLOB sources "${DIR}/*.cpp" "${DIR}/*.hpp")
set(bad "")
foreach(source IN LISTS sources)
  file(STRINGS "${source}" lines REGEX "^[ \t]*#[ \t]*include")
  foreach(line IN LISTS lines)
    if(line MATCHES "#[ \t]*include[ \t]*\"([^\"]*)\"")
      set(path "${CMAKE_MATCH_1}")
      if(path MATCHES "/" OR NOT EXISTS "${DIR}/${path}")
        list(APPEND bad "${source}: ${line}")
      endif()
    elseif(line MATCHES "#[ \t]*include[ \t]*<(daemon|core|config|handlers)/")
      list(APPEND bad "${source}: ${line}")
    endif()
  endforeach()
endforeach()
if(bad)
  list(JOIN bad "\n  " listing)
  message(FATAL_ERROR "handlers may include only public headers (<portico/...>) and files of handlers/; "
                      "what a plugin cannot use, a built-in handler does not either:\n  ${listing}")
endif()
