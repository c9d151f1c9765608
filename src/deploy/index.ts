/** Deployment: the browser bundle of a run's policy and split student. */
export * from './export-policy';
export * from './demo-server';
