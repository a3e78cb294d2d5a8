import { Inject, Injectable } from '@nestjs/common';
import type { RunRecord, RunStatus } from '@xyp/contracts';
import { RunEvents, RunRegistry } from '@xyp/runs';
import { ARTIFACT_STORE, type ArtifactStore } from '@xyp/storage';
import { StageProducer } from './stage-producer';

/** What a stage worker talks to: the run registry, run events, the artifact store and the queues. */
@Injectable()
export class StageRuntime {
  constructor(
    readonly registry: RunRegistry,
    readonly events: RunEvents,
    @Inject(ARTIFACT_STORE) readonly store: ArtifactStore,
    readonly producer: StageProducer,
  ) {}

  /**
   * Ends a run (completed, failed or cancelled) and announces it once: the event is
   * published only by the call that changed the status.
   */
  async endRun(
    runId: string,
    status: Extract<RunStatus, 'completed' | 'failed' | 'cancelled'>,
    details: { error?: string; reportKey?: string; reportMarkdownKey?: string; reportHtmlKey?: string; stage: string; failureArtifacts?: RunRecord['failureArtifacts'] },
  ): Promise<boolean> {
    const { changed } = await this.registry.transition(runId, status, {
      ...(details.error ? { error: details.error } : {}),
      ...(details.reportKey ? { reportKey: details.reportKey } : {}),
      ...(details.reportMarkdownKey ? { reportMarkdownKey: details.reportMarkdownKey } : {}),
      ...(details.reportHtmlKey ? { reportHtmlKey: details.reportHtmlKey } : {}),
      ...(details.failureArtifacts?.length ? { failureArtifacts: details.failureArtifacts } : {}),
    });
    if (changed) {
      await this.events.publish({
        runId,
        type: status === 'completed' ? 'run-completed' : status === 'failed' ? 'run-failed' : 'run-cancelled',
        stage: details.stage,
        message: details.error ?? details.reportKey ?? '',
      });
    }
    return changed;
  }
}
