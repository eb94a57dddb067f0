/* tests/memcache/test_buf.c - the growable output buffer. */
#include "tests/memcache/mc_test_util.h"

static void test_append_consume(void **state)
{
	(void)state;
	struct mc_buf b;
	mc_buf_init(&b);
	assert_int_equal(mc_buf_append(&b, "", 0), 0);
	assert_int_equal(b.len, 0);
	assert_int_equal(mc_buf_append(&b, "hello ", 6), 0);
	assert_int_equal(mc_buf_append(&b, "world", 5), 0);
	assert_int_equal(b.len, 11);
	assert_memory_equal(b.data, "hello world", 11);
	mc_buf_consume(&b, 6);
	assert_int_equal(b.len, 5);
	assert_memory_equal(b.data, "world", 5);
	mc_buf_consume(&b, 100);
	assert_int_equal(b.len, 0);
	mc_buf_deinit(&b);
	assert_null(b.data);
	mc_buf_deinit(&b); /* twice is fine */
}

static void test_reserve_grows(void **state)
{
	(void)state;
	struct mc_buf b;
	mc_buf_init(&b);
	char *p = mc_buf_reserve(&b, 0);
	assert_non_null(p);
	for (int i = 0; i < 1000; i++) {
		p = mc_buf_reserve(&b, 1000);
		assert_non_null(p);
		memset(p, 'a' + i % 26, 1000);
		b.len += 1000;
		assert_true(b.cap >= b.len);
	}
	assert_int_equal(b.len, 1000000);
	assert_int_equal(b.data[999999], 'a' + 999 % 26);
	assert_null(mc_buf_reserve(&b, SIZE_MAX));
	mc_buf_deinit(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_append_consume),
		cmocka_unit_test(test_reserve_grows),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
