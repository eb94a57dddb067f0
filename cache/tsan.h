/*
 * cache/tsan.h - sanitizer support: ThreadSanitizer annotations for the
 * hand-offs that happen inside liburcu, which is not instrumented, and the
 * choice of allocator for item memory in sanitizer builds.
 *
 * TSan sees only the atomics of instrumented code. An item is written by
 * one thread, published through cds_lfht (liburcu's own atomics), read by
 * others, then handed to the call_rcu thread through liburcu's wait-free
 * queue. Without these annotations TSan reports every such hand-off as a
 * race. Each annotation marks a real release/acquire edge that liburcu
 * provides; they compile to nothing outside a -fsanitize=thread build.
 */
#ifndef DPCACHE_CACHE_TSAN_H
#define DPCACHE_CACHE_TSAN_H

#if defined(__SANITIZE_THREAD__)
#define CACHE_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define CACHE_TSAN 1
#endif
#endif

#ifdef CACHE_TSAN
#include <sanitizer/tsan_interface.h>
/* The item's contents are complete: publish (cds_lfht add/replace, call_rcu). */
#define cache_tsan_release(p) __tsan_release((void *)(p))
/* The item was reached through the table or the call_rcu queue. */
#define cache_tsan_acquire(p) __tsan_acquire((void *)(p))
#else
#define cache_tsan_release(p) ((void)(p))
#define cache_tsan_acquire(p) ((void)(p))
#endif

/*
 * Item memory. jemalloc is not instrumented: neither ASan nor TSan would see
 * an item freed, so a use after free or a reuse of its memory by another
 * thread would go unnoticed (ASan) or look like a race (TSan). Sanitizer
 * builds therefore take item memory from malloc, which both intercept; the
 * accounting still uses jemalloc's size classes (nallocx) so the -m limit
 * behaves the same.
 */
#if defined(CACHE_TSAN) || defined(__SANITIZE_ADDRESS__)
#define CACHE_ITEM_MEM_MALLOC 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define CACHE_ITEM_MEM_MALLOC 1
#endif
#endif

#endif /* DPCACHE_CACHE_TSAN_H */
