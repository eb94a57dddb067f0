/*
 * tests/memcache/corpus_meta.h - meta protocol request/reply pairs recorded
 * from memcached 1.6.18; included by test_meta.c and test_split.c.
 */
#ifndef DPCACHE_TESTS_MC_CORPUS_META_H
#define DPCACHE_TESTS_MC_CORPUS_META_H

#include "tests/memcache/corpus.h"

static const struct mc_pair mc_meta_pairs[] = {
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
	  "ma cnt Mi\r\n"
	  "ma cnt Md\r\n"
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
	  "CLIENT_ERROR invalid mode for ma M token\r\n"
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
};
#endif
