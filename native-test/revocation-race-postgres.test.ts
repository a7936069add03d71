// Issue 12 acceptance, on PostgreSQL with two responders whose LISTEN connections are killed: see support/revocation-race-suite.ts.
import { raceOn } from './support/revocation-race-suite';

raceOn('postgres');
