import type { RunSpecInput } from './run-spec';

/**
 * The run spec a SubmitRun request without one stands for: its `stages` as a chain (each after
 * the one before, as runs were before specs), reading the uploaded files as run inputs. Its
 * `params` stay SubmitRun params (overrides), so they are checked the same way for both.
 */
export function specFromStages(stages: readonly string[], uploadedFiles: readonly string[]): RunSpecInput {
  return {
    version: 1,
    inputs: Object.fromEntries(uploadedFiles.map((name) => [name, {}])),
    stages: stages.map((stage, i) => ({ id: stage, needs: i > 0 && stages[i - 1] !== stage ? [stages[i - 1]] : [] })),
  };
}
