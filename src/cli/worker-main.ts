// Entry of a serving process (server.workers > 1), started by the primary through node:cluster (cli/primary.ts).
import { boundHeapGrowth } from './heap';
import { runServingProcess } from './worker';

boundHeapGrowth();
runServingProcess();
