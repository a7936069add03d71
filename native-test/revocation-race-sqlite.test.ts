// Issue 12 acceptance, on SQLite with one responder: see support/revocation-race-suite.ts.
import { raceOn } from './support/revocation-race-suite';

raceOn('sqlite');
