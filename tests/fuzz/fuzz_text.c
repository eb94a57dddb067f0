/*
 * tests/fuzz/fuzz_text.c - libFuzzer target: bytes as a text/meta protocol
 * stream to one session, cut at a fuzzer-chosen point (see fuzz_stream).
 */
#include <stddef.h>
#include <stdint.h>

#include "tests/fuzz/fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fuzz_stream(fuzz_env_get(), data, size, false);
	return 0;
}
