#pragma once
// Named crash points for the crash-consistency tests (tests/scripts/crash_consistency_test.sh).
//
// With HEAR_FAULT_POINT=NAME[:N] in the environment, the N-th (default 1st) time this process
// passes fault_point("NAME") it kills itself with SIGKILL, as a power cut or `kill -9` would,
// at a moment a timed kill hits only by luck (e.g. between the two renames of a checkpoint save).
// Without the variable a fault point costs one getenv.
namespace hear::util {

void fault_point(const char* name);

}  // namespace hear::util
