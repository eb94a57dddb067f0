/*
 * tests/fuzz/fuzz_binary.c - libFuzzer target: bytes as a binary protocol
 * stream to one session (first byte forced to the request magic), cut at a
 * fuzzer-chosen point or fed in small chunks (see fuzz_stream).
 */
#include <stddef.h>
#include <stdint.h>

#include "tests/fuzz/fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fuzz_stream(fuzz_env_get(), data, size, true);
	return 0;
}
