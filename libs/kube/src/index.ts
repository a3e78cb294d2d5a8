export * from './client-node';
export * from './job-kinds';
export * from './kube-jobs';
export * from './kube-job-runner';
export * from './shared-volume';
export * from './cluster-training';
export * from './reward-train-job';
