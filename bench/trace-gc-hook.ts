// Preloaded into a daemon (NODE_OPTIONS=--require, where --trace-gc is not allowed) to print V8's line per
// garbage collection (scavenges, mark-compacts, their pauses and heap sizes) on stdout; with
// OCSP_BENCH_TRACE_GC_FLAG=--trace-gc-nvp, V8's name=value lines (bytes promoted and surviving) instead.
import { setFlagsFromString } from 'node:v8';

setFlagsFromString(process.env.OCSP_BENCH_TRACE_GC_FLAG === '--trace-gc-nvp' ? '--trace-gc-nvp' : '--trace-gc');
