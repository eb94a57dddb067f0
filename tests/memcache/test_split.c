/*
 * tests/memcache/test_split.c - every request split at every byte boundary
 * (and fed one byte at a time) must give the same reply as the unsplit
 * request, which must be memcached 1.6.18's reply (recorded, see
 * test_text.c). A half-arrived request is never an error.
 */
#include "tests/memcache/mc_test_util.h"

#define S(lit) lit, sizeof(lit) - 1

struct pair {
	const char *req;
	size_t nreq;
	const char *exp;
	size_t nexp;
};

static const struct pair corpus[] = {
	{ S("set k 0 0 3\r\n"
	  "abcde\r\n"
	  "get k\r\n"),
	  S("CLIENT_ERROR bad data chunk\r\n"
	  "ERROR\r\n"
	  "END\r\n") },
	{ S("set k 0 0 -1\r\n"
	  "abc\r\n"),
	  S("CLIENT_ERROR bad command line format\r\n"
	  "ERROR\r\n") },
	{ S("set k 0 3000000000 1\r\n"
	  "a\r\n"
	  "get k\r\n"),
	  S("STORED\r\n"
	  "END\r\n") },
	{ S("set k 0 4294967297 1\r\n"
	  "a\r\n"
	  "get k\r\n"),
	  S("STORED\r\n"
	  "VALUE k 0 1\r\n"
	  "a\r\n"
	  "END\r\n") },
	{ S("set k 4294967296 0 1\r\n"
	  "a\r\n"
	  "get k\r\n"),
	  S("STORED\r\n"
	  "VALUE k 0 1\r\n"
	  "a\r\n"
	  "END\r\n") },
	{ S("set k -1 0 1\r\n"
	  "a\r\n"),
	  S("CLIENT_ERROR bad command line format\r\n"
	  "ERROR\r\n") },
	{ S("set k 0 0 2147483647\r\n"),
	  S("CLIENT_ERROR bad command line format\r\n") },
	{ S("set k 0 0 1\r\n"
	  "a\r\n"
	  "incr k 18446744073709551616\r\n"),
	  S("STORED\r\n"
	  "CLIENT_ERROR invalid numeric delta argument\r\n") },
	{ S("incr k -1\r\n"),
	  S("CLIENT_ERROR invalid numeric delta argument\r\n") },
	{ S("set n 0 0 2\r\n"
	  "10\r\n"
	  "incr n 5\r\n"
	  "decr n 100\r\n"
	  "incr n 18446744073709551615\r\n"
	  "incr n 1\r\n"),
	  S("STORED\r\n"
	  "15\r\n"
	  "0\r\n"
	  "18446744073709551615\r\n"
	  "0\r\n") },
	{ S("set k 0 0 1\r\n"
	  "a\r\n"
	  "delete k 0\r\n"
	  "delete k 1\r\n"
	  "delete k noreply\r\n"
	  "delete k 0 noreply\r\n"
	  "delete k 0 x\r\n"
	  "delete\r\n"),
	  S("STORED\r\n"
	  "DELETED\r\n"
	  "CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]\r\n"
	  "CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]\r\n"
	  "ERROR\r\n") },
	{ S("touch k abc\r\n"
	  "touch k 10\r\n"
	  "touch\r\n"
	  "set k 0 0 1\r\n"
	  "a\r\n"
	  "touch k 10\r\n"
	  "touch k 10 noreply\r\n"),
	  S("CLIENT_ERROR invalid exptime argument\r\n"
	  "NOT_FOUND\r\n"
	  "ERROR\r\n"
	  "STORED\r\n"
	  "TOUCHED\r\n") },
	{ S("shutdown\r\n"),
	  S("ERROR: shutdown not enabled\r\n") },
	{ S("\r\n"),
	  S("ERROR\r\n") },
	{ S("\n"),
	  S("ERROR\r\n") },
	{ S("x\r\n"),
	  S("ERROR\r\n") },
	{ S("GET k\r\n"),
	  S("ERROR\r\n") },
	{ S("set n 0 0 2\r\n"
	  "10\r\n"
	  "get k  n\r\n"
	  " get n\r\n"
	  "get\011n\r\n"),
	  S("STORED\r\n"
	  "VALUE n 0 2\r\n"
	  "10\r\n"
	  "END\r\n"
	  "VALUE n 0 2\r\n"
	  "10\r\n"
	  "END\r\n"
	  "ERROR\r\n") },
	{ S("flush_all 0 noreply\r\n"
	  "flush_all 1 2 3\r\n"
	  "flush_all noreply\r\n"
	  "flush_all abc\r\n"
	  "flush_all 0\r\n"),
	  S("ERROR\r\n"
	  "CLIENT_ERROR invalid exptime argument\r\n"
	  "OK\r\n") },
	{ S("verbosity abc\r\n"
	  "verbosity\r\n"
	  "verbosity noreply\r\n"
	  "verbosity 1\r\n"
	  "verbosity 1 noreply\r\n"),
	  S("CLIENT_ERROR bad command line format\r\n"
	  "ERROR\r\n"
	  "OK\r\n") },
	{ S("set k 0 0 1 noreply\r\n"
	  "abc\r\n"
	  "get k\r\n"),
	  S("ERROR\r\n"
	  "END\r\n") },
	{ S("set k 0 0 1\r\n"
	  "ab\r\n"
	  "get k\r\n"),
	  S("CLIENT_ERROR bad data chunk\r\n"
	  "ERROR\r\n"
	  "END\r\n") },
	{ S("add k 0 0 1\r\n"
	  "a\r\n"
	  "add k 0 0 1\r\n"
	  "b\r\n"
	  "replace k 0 0 1\r\n"
	  "c\r\n"
	  "replace z 0 0 1\r\n"
	  "c\r\n"
	  "get k z\r\n"),
	  S("STORED\r\n"
	  "NOT_STORED\r\n"
	  "STORED\r\n"
	  "NOT_STORED\r\n"
	  "VALUE k 0 1\r\n"
	  "c\r\n"
	  "END\r\n") },
	{ S("append k 0 0 1\r\n"
	  "a\r\n"
	  "prepend k 0 0 1\r\n"
	  "a\r\n"
	  "set k 7 0 1\r\n"
	  "b\r\n"
	  "append k 0 0 2\r\n"
	  "cd\r\n"
	  "prepend k 9 0 2\r\n"
	  "xy\r\n"
	  "get k\r\n"),
	  S("NOT_STORED\r\n"
	  "NOT_STORED\r\n"
	  "STORED\r\n"
	  "STORED\r\n"
	  "STORED\r\n"
	  "VALUE k 7 5\r\n"
	  "xybcd\r\n"
	  "END\r\n") },
	{ S("cas k 0 0 1 1\r\n"
	  "a\r\n"
	  "set k 0 0 1\r\n"
	  "b\r\n"
	  "cas k 0 0 1 99999\r\n"
	  "c\r\n"
	  "cas k 0 0 1 abc\r\n"
	  "c\r\n"
	  "cas k 0 0 1\r\n"),
	  S("NOT_FOUND\r\n"
	  "STORED\r\n"
	  "EXISTS\r\n"
	  "CLIENT_ERROR bad command line format\r\n"
	  "ERROR\r\n"
	  "ERROR\r\n") },
	{ S("set k 0 0 1\r\n"
	  "a\r\n"
	  "set k 0 0 1 noreply\r\n"
	  "b\r\n"
	  "get k\r\n"
	  "add k 0 0 1 noreply\r\n"
	  "c\r\n"
	  "get k\r\n"),
	  S("STORED\r\n"
	  "VALUE k 0 1\r\n"
	  "b\r\n"
	  "END\r\n"
	  "VALUE k 0 1\r\n"
	  "b\r\n"
	  "END\r\n") },
	{ S("set k 0 0 1 2 3\r\n"
	  "a\r\n"
	  "set k 0 0\r\n"
	  "set\r\n"
	  "set k abc 0 1\r\n"
	  "a\r\n"),
	  S("ERROR\r\n"
	  "ERROR\r\n"
	  "ERROR\r\n"
	  "ERROR\r\n"
	  "CLIENT_ERROR bad command line format\r\n"
	  "ERROR\r\n") },
	{ S("incr\r\n"
	  "incr k\r\n"
	  "incr k 1 2 3\r\n"
	  "incr nokey 1\r\n"
	  "decr nokey 1\r\n"
	  "incr nokey 1 noreply\r\n"
	  "incr nokey abc noreply\r\n"),
	  S("ERROR\r\n"
	  "ERROR\r\n"
	  "ERROR\r\n"
	  "NOT_FOUND\r\n"
	  "NOT_FOUND\r\n") },
	{ S("set k 0 0 3\r\n"
	  "-12\r\n"
	  "incr k 1\r\n"
	  "set k 0 0 2\r\n"
	  " 1\r\n"
	  "incr k 1\r\n"
	  "set k 0 0 21\r\n"
	  "123456789012345678901\r\n"
	  "incr k 1\r\n"),
	  S("STORED\r\n"
	  "CLIENT_ERROR cannot increment or decrement non-numeric value\r\n"
	  "STORED\r\n"
	  "2\r\n"
	  "STORED\r\n"
	  "CLIENT_ERROR cannot increment or decrement non-numeric value\r\n") },
	{ S("set k 0 0 20\r\n"
	  "18446744073709551615\r\n"
	  "incr k 1\r\n"
	  "set k 0 0 2\r\n"
	  "12\r\n"
	  "decr k 13\r\n"),
	  S("STORED\r\n"
	  "0\r\n"
	  "STORED\r\n"
	  "0\r\n") },
	{ S("set k 0 0 5\r\n"
	  "00012\r\n"
	  "incr k 1\r\n"
	  "get k\r\n"),
	  S("STORED\r\n"
	  "13\r\n"
	  "VALUE k 0 5\r\n"
	  "13   \r\n"
	  "END\r\n") },
	{ S("set k 0 0 2\r\n"
	  "hi\r\n"
	  "stats reset\r\n"
	  "stats detail\r\n"
	  "stats detail on\r\n"
	  "stats cachedump 1 1\r\n"
	  "stats nope\r\n"),
	  S("STORED\r\n"
	  "RESET\r\n"
	  "CLIENT_ERROR usage: stats detail on|off|dump\r\n"
	  "OK\r\n"
	  "END\r\n"
	  "ERROR\r\n") },
	{ S("get aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa b\r\n"),
	  S("CLIENT_ERROR bad command line format\r\n") },
	{ S("set aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa 0 0 1\r\n"
	  "a\r\n"),
	  S("CLIENT_ERROR bad command line format\r\n"
	  "ERROR\r\n") },
	{ S("set k 0 0 1\r\n"
	  "a\000bc\r\n"
	  "get k\000zz\r\n"),
	  S("CLIENT_ERROR bad data chunk\r\n"
	  "ERROR\r\n"
	  "END\r\n") },
	{ S("\000\001\002garbage\r\n"
	  "get\r\n"),
	  S("ERROR\r\n"
	  "ERROR\r\n") },
	{ S("set k 0 0 0\r\n"
	  "\r\n"
	  "get k\r\n"
	  "append k 0 0 0\r\n"
	  "\r\n"
	  "get k\r\n"),
	  S("STORED\r\n"
	  "VALUE k 0 0\r\n"
	  "\r\n"
	  "END\r\n"
	  "STORED\r\n"
	  "VALUE k 0 0\r\n"
	  "\r\n"
	  "END\r\n") },
	{ S("set k 0 0 1 noreply\r\n"
	  "a\r\n"
	  "add k 0 0 1 noreply\r\n"
	  "b\r\n"
	  "replace k 0 0 1 noreply\r\n"
	  "c\r\n"
	  "append k 0 0 1 noreply\r\n"
	  "d\r\n"
	  "prepend k 0 0 1 noreply\r\n"
	  "e\r\n"
	  "incr k 1 noreply\r\n"
	  "decr k 1 noreply\r\n"
	  "touch k 0 noreply\r\n"
	  "delete k noreply\r\n"
	  "get k\r\n"),
	  S("END\r\n") },
	{ S("set k 1 2 3 4 5 6 7 8\r\n"
	  "get a b c d e f g h i j k l m n o p q r s t u v w x y z 1 2 3 4 5 6 7 8 9\r\n"),
	  S("ERROR\r\n"
	  "END\r\n") },
	{ S("set big 0 0 2000000 noreply\r\n"
	  "get big\r\n"),
	  S("") },
	{ S("decr\r\n"
	  "touch k\r\n"
	  "cas\r\n"
	  "replace\r\n"
	  "prepend k\r\n"
	  "append k 0\r\n"
	  "add\r\n"
	  "bget\r\n"
	  "gets\r\n"
	  "gats 1\r\n"
	  "stats detail off\r\n"
	  "stats detail dump\r\n"
	  "stats cachedump\r\n"
	  "stats cachedump a b\r\n"
	  "stats cachedump 99 1\r\n"),
	  S("ERROR\r\n"
	  "ERROR\r\n"
	  "ERROR\r\n"
	  "ERROR\r\n"
	  "ERROR\r\n"
	  "ERROR\r\n"
	  "ERROR\r\n"
	  "ERROR\r\n"
	  "ERROR\r\n"
	  "END\r\n"
	  "OK\r\n"
	  "END\r\n"
	  "CLIENT_ERROR bad command line\r\n"
	  "CLIENT_ERROR bad command line format\r\n"
	  "CLIENT_ERROR Illegal slab id\r\n") },
	{ S("quit\r\n"
	  "get k\r\n"),
	  S("<CLOSED>") },
	{ S("   \r\n"
	  "set  k  0  0  1 \r\n"
	  "a\r\n"
	  "get    k   \r\n"),
	  S("ERROR\r\n"
	  "STORED\r\n"
	  "VALUE k 0 1\r\n"
	  "a\r\n"
	  "END\r\n") },
	{ S("set k 0 0 1\r\n"
	  "a\r\n"
	  "incr k 1\r\n"
	  "set k 0 0 1\r\n"
	  "9\r\n"
	  "incr k 1\r\n"
	  "incr k 18446744073709551615\r\n"
	  "decr k 18446744073709551615\r\n"),
	  S("STORED\r\n"
	  "CLIENT_ERROR cannot increment or decrement non-numeric value\r\n"
	  "STORED\r\n"
	  "10\r\n"
	  "9\r\n"
	  "0\r\n") },
	{ S("mn\r\n"
	  "me\r\n"
	  "me k\r\n"
	  "mx k\r\n"
	  "m\r\n"
	  "mgg k\r\n"),
	  S("MN\r\n"
	  "CLIENT_ERROR bad command line format\r\n"
	  "EN\r\n"
	  "ERROR\r\n"
	  "ERROR\r\n"
	  "ERROR\r\n") },
	{ S("mg foo O123 k v\r\n"
	  "mg foo q v\r\n"
	  "mn\r\n"),
	  S("EN O123 kfoo\r\n"
	  "MN\r\n") },
	{ S("ms foo 3 T0 F5 k O9\r\n"
	  "abc\r\n"
	  "mg foo v f s t k O1 h l\r\n"
	  "mg foo q\r\n"
	  "mg foo\r\n"
	  "mn\r\n"),
	  S("HD kfoo O9\r\n"
	  "VA 3 f5 s3 t-1 kfoo O1 h0 l0\r\n"
	  "abc\r\n"
	  "HD\r\n"
	  "HD\r\n"
	  "MN\r\n") },
	{ S("mg\r\n"
	  "mg foo v v\r\n"
	  "mg foo zz\r\n"
	  "mg foo O123456789012345678901234567890123\r\n"),
	  S("ERROR\r\n"
	  "CLIENT_ERROR duplicate flag\r\n"
	  "CLIENT_ERROR invalid flag\r\n"
	  "CLIENT_ERROR opaque token too long\r\n") },
	{ S("ms foo\r\n"
	  "ms foo abc\r\n"
	  "ms foo -1\r\n"
	  "ms foo 2 MX\r\n"
	  "xx\r\n"
	  "ms foo 2 MEE\r\n"
	  "xx\r\n"),
	  S("CLIENT_ERROR bad command line format\r\n"
	  "CLIENT_ERROR bad command line format\r\n"
	  "CLIENT_ERROR bad command line format\r\n"
	  "CLIENT_ERROR invalid mode for ms M token\r\n"
	  "CLIENT_ERROR incorrect length for M token\r\n") },
	{ S("ms foo 2\r\n"
	  "ab\r\n"
	  "ms foo 2 ME\r\n"
	  "xx\r\n"
	  "ms foo 2 MA\r\n"
	  "yy\r\n"
	  "mg foo v\r\n"
	  "ms nokey 1 MA\r\n"
	  "z\r\n"
	  "ms nokey 1 MA q\r\n"
	  "z\r\n"
	  "mn\r\n"),
	  S("HD\r\n"
	  "NS\r\n"
	  "HD\r\n"
	  "VA 4\r\n"
	  "abyy\r\n"
	  "NS\r\n"
	  "NS\r\n"
	  "MN\r\n") },
	{ S("ms foo 2 C1\r\n"
	  "xx\r\n"
	  "ms foo 2 q\r\n"
	  "zz\r\n"
	  "ms foo 2 q\r\n"
	  "zzz\r\n"
	  "mn\r\n"),
	  S("NF\r\n"
	  "CLIENT_ERROR bad data chunk\r\n"
	  "ERROR\r\n"
	  "MN\r\n") },
	{ S("ms foo 2\r\n"
	  "ab\r\n"
	  "md foo q\r\n"
	  "md foo\r\n"
	  "md foo O5 k\r\n"
	  "md foo zz\r\n"
	  "mn\r\n"),
	  S("HD\r\n"
	  "NF\r\n"
	  "NF O5 kfoo\r\n"
	  "CLIENT_ERROR invalid or duplicate flag\r\n"
	  "MN\r\n") },
	{ S("ma cnt\r\n"
	  "ma cnt N0 J10 v\r\n"
	  "ma cnt v t\r\n"
	  "ma cnt MD D3 v\r\n"
	  "ma cnt MX\r\n"
	  "ma cnt Dabc\r\n"
	  "ma cnt q\r\n"
	  "mn\r\n"),
	  S("NF\r\n"
	  "VA 2\r\n"
	  "10\r\n"
	  "VA 2 t-1\r\n"
	  "11\r\n"
	  "VA 1\r\n"
	  "8\r\n"
	  "CLIENT_ERROR invalid mode for ma M token\r\n"
	  "CLIENT_ERROR invalid or duplicate flag\r\n"
	  "MN\r\n") },
	{ S("me nope\r\n"
	  "mz foo\r\n"),
	  S("EN\r\n"
	  "ERROR\r\n") },
	{ S("mg Zm9v b k v\r\n"
	  "ms Zm9v 2 b k\r\n"
	  "hi\r\n"
	  "mg Zm9v b k v\r\n"
	  "mg foo v\r\n"
	  "mg !!! b\r\n"),
	  S("EN kZm9v b\r\n"
	  "HD kZm9v b\r\n"
	  "VA 2 kZm9v b\r\n"
	  "hi\r\n"
	  "VA 2\r\n"
	  "hi\r\n"
	  "CLIENT_ERROR error decoding key\r\n") },
	{ S("ms foo 2 T100\r\n"
	  "hi\r\n"
	  "mg foo R200 v\r\n"
	  "mg foo R200 v\r\n"
	  "mg foo R50 v\r\n"),
	  S("HD\r\n"
	  "VA 2 W\r\n"
	  "hi\r\n"
	  "VA 2 Z\r\n"
	  "hi\r\n"
	  "VA 2 Z\r\n"
	  "hi\r\n") },
	{ S("ms foo 2\r\n"
	  "hi\r\n"
	  "md foo I\r\n"
	  "mg foo v\r\n"
	  "mg foo v\r\n"
	  "ms foo 2 I C1\r\n"
	  "yo\r\n"
	  "mg foo v\r\n"),
	  S("HD\r\n"
	  "HD\r\n"
	  "VA 2 X W\r\n"
	  "hi\r\n"
	  "VA 2 Z X\r\n"
	  "hi\r\n"
	  "HD\r\n"
	  "VA 2 Z X\r\n"
	  "yo\r\n") },
	{ S("ms foo 2 S1\r\n"
	  "hi\r\n"
	  "mg foo s v\r\n"
	  "ms foo 2 MS\r\n"
	  "hi\r\n"
	  "ms foo 2 Mx\r\n"
	  "hi\r\n"),
	  S("CLIENT_ERROR invalid flag\r\n"
	  "EN\r\n"
	  "HD\r\n"
	  "CLIENT_ERROR invalid mode for ms M token\r\n") },
	{ S("ms foo 2 T-1\r\n"
	  "hi\r\n"
	  "mg foo v\r\n"
	  "ms foo 2 Tabc\r\n"
	  "hi\r\n"
	  "mg foo v\r\n"
	  "ms foo 2 Fabc\r\n"
	  "hi\r\n"),
	  S("HD\r\n"
	  "EN\r\n"
	  "CLIENT_ERROR bad token in command line format\r\n"
	  "EN\r\n"
	  "CLIENT_ERROR bad command line format\r\n") },
	{ S("ms foo 2 F4294967295\r\n"
	  "hi\r\n"
	  "mg foo f v\r\n"
	  "mg foo Tabc v\r\n"
	  "mg foo T0 t v\r\n"),
	  S("HD\r\n"
	  "VA 2 f4294967295\r\n"
	  "hi\r\n"
	  "CLIENT_ERROR bad token in command line format\r\n"
	  "VA 2 t-1\r\n"
	  "hi\r\n") },
	{ S("mg foo u\r\n"
	  "ma foo J5 N0\r\n"
	  "mg foo v\r\n"
	  "ma foo N0 J5 MI\r\n"
	  "ma foo M+ v\r\n"
	  "ma foo M- v D100\r\n"
	  "ma foo Mq\r\n"),
	  S("EN\r\n"
	  "HD\r\n"
	  "VA 1\r\n"
	  "5\r\n"
	  "HD\r\n"
	  "VA 1\r\n"
	  "7\r\n"
	  "VA 1\r\n"
	  "0\r\n"
	  "CLIENT_ERROR invalid mode for ma M token\r\n") },
	{ S("md foo C1\r\n"
	  "ms foo 1\r\n"
	  "x\r\n"
	  "md foo C1\r\n"
	  "md foo C1 q\r\n"
	  "md\r\n"
	  "md foo I T30\r\n"
	  "mg foo t v\r\n"),
	  S("NF\r\n"
	  "HD\r\n"
	  "EX\r\n"
	  "EX\r\n"
	  "ERROR\r\n"
	  "HD\r\n"
	  "VA 1 t30 X W\r\n"
	  "x\r\n") },
	{ S("ma foo C1\r\n"
	  "ma foo C1 N0\r\n"
	  "ma foo O1 k\r\n"
	  "ma foo D1 D2\r\n"),
	  S("NF\r\n"
	  "HD\r\n"
	  "HD O1 kfoo\r\n"
	  "CLIENT_ERROR invalid or duplicate flag\r\n") },
	{ S("mg foo v v v v v v v v v v v v v v v v v v v v v\r\n"
	  "mg foo a b c d e f g h i j k l m n o p q r s t u\r\n"
	  "mg foo s t f c k O1 h l u v Oa\r\n"),
	  S("CLIENT_ERROR options flags are too long\r\n"
	  "CLIENT_ERROR options flags are too long\r\n"
	  "CLIENT_ERROR duplicate flag\r\n") },
	{ S("mg foo k k\r\n"
	  "mg foo \001\r\n"
	  "mg foo \200\r\n"),
	  S("CLIENT_ERROR duplicate flag\r\n"
	  "CLIENT_ERROR invalid flag\r\n"
	  "CLIENT_ERROR duplicate flag\r\n") },
	{ S("mg aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa v\r\n"
	  "ms aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa 1\r\n"
	  "a\r\n"),
	  S("CLIENT_ERROR bad command line format\r\n"
	  "CLIENT_ERROR bad command line format\r\n"
	  "ERROR\r\n") },
	{ S("ms foo 2 k O1 b\r\n"
	  "hi\r\n"
	  "ms Zm9v 2 k O1 b\r\n"
	  "hi\r\n"
	  "mg Zm9v b v k\r\n"
	  "md Zm9v b k q\r\n"
	  "mg foo v\r\n"),
	  S("CLIENT_ERROR error decoding key\r\n"
	  "HD kZm9v b O1\r\n"
	  "VA 2 kZm9v b\r\n"
	  "hi\r\n"
	  "EN\r\n") },
	{ S("mg foo s v q k\r\n"
	  "mn\r\n"
	  "md foo q O1\r\n"
	  "ma foo q\r\n"
	  "mn\r\n"),
	  S("MN\r\n"
	  "NF O1\r\n"
	  "NF\r\n"
	  "MN\r\n") },
	{ S("ms foo 2 MP\r\n"
	  "ab\r\n"
	  "ms foo 2 MR\r\n"
	  "ab\r\n"
	  "ms foo 2 MS\r\n"
	  "ab\r\n"
	  "ms foo 2 MP\r\n"
	  "cd\r\n"
	  "ms foo 2 MA\r\n"
	  "ef\r\n"
	  "ms foo 2 MR\r\n"
	  "gh\r\n"
	  "mg foo v\r\n"),
	  S("NS\r\n"
	  "NS\r\n"
	  "HD\r\n"
	  "HD\r\n"
	  "HD\r\n"
	  "HD\r\n"
	  "VA 2\r\n"
	  "gh\r\n") },
	{ S("ms foo 2 MR q\r\n"
	  "ab\r\n"
	  "ms foo 2 ME q\r\n"
	  "ab\r\n"
	  "ms foo 2 ME q\r\n"
	  "ab\r\n"
	  "mn\r\n"),
	  S("NS\r\n"
	  "NS\r\n"
	  "MN\r\n") },
	{ S("ms foo 2 T10\r\n"
	  "ab\r\n"
	  "mg foo t\r\n"
	  "mg foo T20 t\r\n"
	  "mg foo t\r\n"
	  "ma foo\r\n"),
	  S("HD\r\n"
	  "HD t10\r\n"
	  "HD t20\r\n"
	  "HD t20\r\n"
	  "CLIENT_ERROR cannot increment or decrement non-numeric value\r\n") },
	{ S("ms foo 1 k\r\n"
	  "12345\r\n"
	  "mg foo v\r\n"),
	  S("CLIENT_ERROR bad data chunk\r\n"
	  "ERROR\r\n"
	  "EN\r\n") },
	{ S("ma foo N0 J18446744073709551616\r\n"
	  "ma foo N0 Jx\r\n"
	  "ma foo N0 J7 v t\r\n"
	  "ma foo MI D18446744073709551615 v\r\n"),
	  S("CLIENT_ERROR invalid or duplicate flag\r\n"
	  "CLIENT_ERROR invalid or duplicate flag\r\n"
	  "VA 1 t-1\r\n"
	  "7\r\n"
	  "VA 1\r\n"
	  "6\r\n") },
	{ S("ms 1 1\r\n"
	  "a\r\n"
	  "ms 1 2 F1 F2\r\n"
	  "ab\r\n"
	  "mn\r\n"),
	  S("HD\r\n"
	  "CLIENT_ERROR duplicate flag\r\n"
	  "MN\r\n") },
	{ S("ms foo 1 O123456789012345678901234567890123\r\n"
	  "a\r\n"
	  "mn\r\n"),
	  S("CLIENT_ERROR opaque token too long\r\n"
	  "MN\r\n") },
	{ S("md foo O123456789012345678901234567890123\r\n"
	  "ma foo O123456789012345678901234567890123\r\n"
	  "mn\r\n"),
	  S("CLIENT_ERROR opaque token too long\r\n"
	  "CLIENT_ERROR opaque token too long\r\n"
	  "MN\r\n") },
	{ S("ms foo 1 I\r\n"
	  "a\r\n"
	  "mg foo v\r\n"
	  "md foo I T10 q\r\n"
	  "mg foo t v\r\n"
	  "mg foo t v\r\n"
	  "ms foo 1\r\n"
	  "b\r\n"
	  "mg foo v\r\n"),
	  S("HD\r\n"
	  "VA 1\r\n"
	  "a\r\n"
	  "VA 1 t10 X W\r\n"
	  "a\r\n"
	  "VA 1 t10 Z X\r\n"
	  "a\r\n"
	  "HD\r\n"
	  "VA 1\r\n"
	  "b\r\n") },
	{ S("mg foo N10 s\r\n"
	  "mg foo N10 s\r\n"
	  "ms foo 1 T0\r\n"
	  "z\r\n"
	  "mg foo N10 v\r\n"),
	  S("HD s0 W\r\n"
	  "HD s0 Z\r\n"
	  "HD\r\n"
	  "VA 1\r\n"
	  "z\r\n") },
	{ S("ms foo 2 zz\r\n"
	  "xx\r\n"
	  "mn\r\n"),
	  S("CLIENT_ERROR invalid flag\r\n"
	  "MN\r\n") },
	{ S("ms foo 2 b\r\n"
	  "xx\r\n"
	  "mn\r\n"),
	  S("CLIENT_ERROR error decoding key\r\n"
	  "MN\r\n") },
	{ S("ms foo 2 T1 T2\r\n"
	  "xx\r\n"
	  "mn\r\n"),
	  S("CLIENT_ERROR duplicate flag\r\n"
	  "MN\r\n") },
	{ S("ms foo 2 Cx\r\n"
	  "xx\r\n"
	  "mn\r\n"),
	  S("CLIENT_ERROR bad token in command line format\r\n"
	  "MN\r\n") },
	{ S("ms foo 2 q q\r\n"
	  "xx\r\n"
	  "mn\r\n"),
	  S("CLIENT_ERROR duplicate flag\r\n"
	  "MN\r\n") },
	{ S("ms foo 2 a b c d e f g h i j k l m n o p q r s t\r\n"
	  "xx\r\n"
	  "mn\r\n"),
	  S("CLIENT_ERROR options flags too long\r\n"
	  "ERROR\r\n"
	  "MN\r\n") },
	{ S("mg foo Nx\r\n"
	  "mg foo Rx\r\n"
	  "mg foo T\r\n"
	  "mg foo N\r\n"
	  "mn\r\n"),
	  S("CLIENT_ERROR bad token in command line format\r\n"
	  "CLIENT_ERROR bad token in command line format\r\n"
	  "CLIENT_ERROR bad token in command line format\r\n"
	  "CLIENT_ERROR bad token in command line format\r\n"
	  "MN\r\n") },
	{ S("ma foo Jx N0\r\n"
	  "ma foo D\r\n"
	  "ma foo M\r\n"
	  "ma foo MII\r\n"
	  "mn\r\n"),
	  S("CLIENT_ERROR invalid or duplicate flag\r\n"
	  "CLIENT_ERROR invalid or duplicate flag\r\n"
	  "CLIENT_ERROR invalid or duplicate flag\r\n"
	  "CLIENT_ERROR invalid or duplicate flag\r\n"
	  "MN\r\n") },
	{ S("md foo T\r\n"
	  "md foo Tx\r\n"
	  "md foo I Tx\r\n"
	  "mn\r\n"),
	  S("CLIENT_ERROR invalid or duplicate flag\r\n"
	  "CLIENT_ERROR invalid or duplicate flag\r\n"
	  "CLIENT_ERROR invalid or duplicate flag\r\n"
	  "MN\r\n") },
	{ S("mg foo\000 v\r\n"
	  "mn\r\n"),
	  S("EN\r\n"
	  "MN\r\n") },
	{ S("mg  foo   v  \r\n"
	  "ms  foo  1  \r\n"
	  "a\r\n"
	  "mg foo v\r\n"),
	  S("EN\r\n"
	  "HD\r\n"
	  "VA 1\r\n"
	  "a\r\n") },
	{ S("mg foo \r\n"
	  "md foo \r\n"),
	  S("EN\r\n"
	  "NF\r\n") },
	{ S("set foo 0 0 1\r\n"
	  "1\r\n"
	  "ma foo v\r\n"
	  "ma foo MD v\r\n"
	  "ma foo MD v\r\n"),
	  S("STORED\r\n"
	  "VA 1\r\n"
	  "2\r\n"
	  "VA 1\r\n"
	  "1\r\n"
	  "VA 1\r\n"
	  "0\r\n") },
	{ S("ma b N1 k q T-1\r\n"
	  "mg b v\r\n"
	  "ma b q\r\n"
	  "ma c T-1 N100 q v\r\n"
	  "mg c t\r\n"
	  "mn\r\n"),
	  S("HD kb\r\n"
	  "EN\r\n"
	  "NF\r\n"
	  "VA 1\r\n"
	  "0\r\n"
	  "HD t100\r\n"
	  "MN\r\n") },
	{ S("mg n t R30 ME N1\r\n"
	  "mg n t\r\n"
	  "ms f 1 T100\r\n"
	  "a\r\n"
	  "mg f t T30 t\r\n"
	  "mg f t\r\n"
	  "mg g N10 t T20 t\r\n"
	  "mg g t\r\n"),
	  S("HD t-1 W\r\n"
	  "HD t1 Z\r\n"
	  "HD\r\n"
	  "CLIENT_ERROR duplicate flag\r\n"
	  "HD t100\r\n"
	  "CLIENT_ERROR duplicate flag\r\n"
	  "EN\r\n") },
	/* storage with values that contain "\r\n" and look like commands */
	{ S("set k 0 0 7\r\nget k\r\n\r\nget k\r\n"),
	  S("STORED\r\nVALUE k 0 7\r\nget k\r\n\r\nEND\r\n") },
	{ S("ms k 5 T0 F3\r\n\r\n\r\n\r\r\nmg k v f\r\n"),
	  S("HD\r\nVA 5 f3\r\n\r\n\r\n\r\r\n") },
};

static void test_split_corpus(void **state)
{
	(void)state;
	cache_clock_set_manual(1700000000u);
	for (size_t i = 0; i < sizeof(corpus) / sizeof(corpus[0]); i++) {
		const struct pair *p = &corpus[i];
		size_t nexp = p->nexp;
		if (nexp >= 8 && memcmp(p->exp + nexp - 8, "<CLOSED>", 8) == 0)
			nexp -= 8;
		mc_expect_split(NULL, NULL, p->req, p->nreq, p->exp, nexp);
	}
	cache_clock_set_real();
}

/* A multi-get that pauses on a small high-water mark, split everywhere. */
static void test_split_paused_multiget(void **state)
{
	(void)state;
	struct mc_fixture_opts o = { .out_high_water = 32 };
	mc_expect_split_str(&o,
		"set a 0 0 10\r\naaaaaaaaaa\r\nset b 0 0 10\r\nbbbbbbbbbb\r\n",
		"get a b x a\r\ngets x\r\n",
		"VALUE a 0 10\r\naaaaaaaaaa\r\nVALUE b 0 10\r\nbbbbbbbbbb\r\n"
		"VALUE a 0 10\r\naaaaaaaaaa\r\nEND\r\nEND\r\n");
}

/* A rejected store is swallowed the same however it arrives. */
static void test_split_swallow(void **state)
{
	(void)state;
	struct mc_fixture_opts o = { .item_size_max = 1024 };
	char req[1400];
	int h = snprintf(req, sizeof(req), "set k 0 0 1200\r\n");
	memset(req + h, 'v', 1200);
	memcpy(req + h + 1200, "\r\nmn\r\n", 6);
	mc_expect_split(&o, NULL, req, (size_t)h + 1206,
			S("SERVER_ERROR object too large for cache\r\nMN\r\n"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_split_corpus),
		cmocka_unit_test(test_split_paused_multiget),
		cmocka_unit_test(test_split_swallow),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
