/* SPDX-License-Identifier: GPL-2.0 OR MIT */
/* The peer comparison of the kernel benchmark (icmpcap_bench_peers.c). */
#ifndef ICMPCAP_BENCH_PEERS_H
#define ICMPCAP_BENCH_PEERS_H

#include <stdint.h>

/*
 * Module vs the app's AF_PACKET helper vs tcpdump on one flood between
 * namespaces a and b; prints BENCH lines. Stops bisecting at deadline
 * (CLOCK_MONOTONIC ns). The calling thread moves to namespace b.
 */
int bench_peers(uint64_t deadline);

#endif
