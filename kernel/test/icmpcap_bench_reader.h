/* SPDX-License-Identifier: GPL-2.0 OR MIT */
/* C interface of icmpcap_bench_reader.cc: the application's RingReader. */
#ifndef ICMPCAP_BENCH_READER_H
#define ICMPCAP_BENCH_READER_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

struct bench_reader;

/*
 * producer[i]: read-only mapping of ring i's producer page and data;
 * consumer_pos[i]: its consumer page. NULL when a producer page does not match
 * (wrong ABI, size).
 */
struct bench_reader *bench_reader_new(uint8_t **producer, uint64_t **consumer_pos,
				      unsigned int nr, uint64_t data_size, uint16_t cap_len);
/* Batches only, no rings: for records that arrive by netlink. */
struct bench_reader *bench_batcher_new(uint16_t cap_len);
void bench_batcher_append(struct bench_reader *br, const struct icmpcap_record *rec);
int bench_batcher_flush(struct bench_reader *br);	/* 1: a batch was delivered */
void bench_reader_free(struct bench_reader *br);
long bench_reader_drain(struct bench_reader *br, int flush);
/* CLOCK_MONOTONIC ns when the last batch was delivered (0: none yet). */
uint64_t bench_reader_done(struct bench_reader *br);
uint64_t bench_reader_records(struct bench_reader *br);	/* delivered and checked */
uint64_t bench_reader_bad(struct bench_reader *br);
uint64_t bench_reader_batches(struct bench_reader *br);
const char *bench_reader_error(const struct bench_reader *br);

#ifdef __cplusplus
}
#endif

#endif
