# jc_drop_relative_includes(TARGET): removes relative directories from an
# imported target's INTERFACE_INCLUDE_DIRECTORIES. A .pc file with a
# relative includedir (Debian 13's msgpack-c.pc: includedir=include) gives
# one, and CMake then refuses every target linking it.
function(jc_drop_relative_includes target)
  get_target_property(_dirs ${target} INTERFACE_INCLUDE_DIRECTORIES)
  if(NOT _dirs)
    return()
  endif()
  set(_keep "")
  foreach(_d IN LISTS _dirs)
    if(IS_ABSOLUTE "${_d}")
      list(APPEND _keep "${_d}")
    else()
      message(STATUS "jobcache: ignoring the relative include directory '${_d}' of ${target}")
    endif()
  endforeach()
  set_target_properties(${target} PROPERTIES INTERFACE_INCLUDE_DIRECTORIES "${_keep}")
endfunction()
