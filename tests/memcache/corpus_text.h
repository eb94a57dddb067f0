/*
 * tests/memcache/corpus_text.h - text protocol request/reply pairs recorded
 * from memcached 1.6.18; included by test_text.c and test_split.c.
 */
#ifndef DPCACHE_TESTS_MC_CORPUS_TEXT_H
#define DPCACHE_TESTS_MC_CORPUS_TEXT_H

#include "tests/memcache/corpus.h"

static const struct mc_pair mc_text_pairs[] = {
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
};
#endif
