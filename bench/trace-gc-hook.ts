// Preloaded into a daemon (NODE_OPTIONS=--require, where --trace-gc is not allowed) to print V8's line per
// garbage collection (scavenges, mark-compacts, their pauses and heap sizes) on stdout.
import { setFlagsFromString } from 'node:v8';

setFlagsFromString('--trace-gc');
