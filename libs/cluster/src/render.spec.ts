import { describe, expect, it } from 'vitest';
import { jobName } from './render';

const dns1035 = /^[a-z]([-a-z0-9]*[a-z0-9])?$/;

describe('jobName', () => {
  it('names a stage without an instance <runId>-<suffix>, as before instances existed', () => {
    expect(jobName('xy3-run', 'rm')).toBe('xy3-run-rm');
    expect(jobName('xy3-run', 'cpt', 'cpt')).toBe('xy3-run-cpt');
  });

  it('gives each instance of one stage in one run its own job name', () => {
    expect(jobName('xy3-run', 'ppo', 'rlhf.ppo#round-1')).toBe('xy3-run-ppo-round-1');
    expect(jobName('xy3-run', 'ppo', 'rlhf.ppo#round-2')).toBe('xy3-run-ppo-round-2');
    expect(jobName('xy3-run', 'rm', 'reward.train#finetune-s1')).toBe('xy3-run-rm-finetune-s1');
  });

  it('keeps a name DNS-1035 and within 47 characters, and apart for instances that differ only in what a label cannot hold', () => {
    const long = 'run-20261204-99aa1155-with-a-long-name-indeed';
    const names = ['reward.train#Finetune_S1', 'reward.train#finetune-s1', 'reward.train#finetune_s1', 'reward.train#a-very-long-instance-name-of-a-sweep-1', 'reward.train#a-very-long-instance-name-of-a-sweep-2', 'reward.train#__'].map((stage) => jobName(long, 'rm', stage));
    for (const name of names) {
      expect(name.length).toBeLessThanOrEqual(47);
      expect(name).toMatch(dns1035);
    }
    expect(new Set(names).size).toBe(names.length);
    expect(names[1]).toBe(`${long.slice(0, 47 - 'rm-finetune-s1'.length - 1)}-rm-finetune-s1`);
  });
});
