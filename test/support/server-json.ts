/** The parts of `vome server … --json` results that tests read. */
export interface ServerJson {
  id: string;
  name: string;
  state: string;
  host: string;
  ipv4: string;
  mac: string;
  suspendedAt: string | null;
}

export interface OperationJson {
  server: ServerJson;
  operation: { id: string; kind: string; state: string; attempts: number; resumed: boolean };
  roundTrips: number;
}
