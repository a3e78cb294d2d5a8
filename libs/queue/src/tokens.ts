/** Injection tokens of the queue module. */
export const QUEUE_SETTINGS = Symbol('QUEUE_SETTINGS');
export const REDIS_CLIENT = Symbol('REDIS_CLIENT');
/** The stage names this app must handle: one worker each, no more, no fewer. */
export const EXPECTED_STAGES = Symbol('EXPECTED_STAGES');
/** FlowProducer name for runs. */
export const RUN_FLOW = 'runs';
