import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parseCsv } from './csv';
import { parseMcqCsv, parseMcqJsonl, readMcqData, subjectOfFile } from './mcq-data';

describe('parseCsv (RFC 4180)', () => {
  it('reads quoted fields with commas, doubled quotes and line breaks, CRLF and a BOM, with the line each record starts on', () => {
    const text = '\ufeffa,b,c\r\n1,"x, y","say ""hi"""\r\n2,"line one\r\nline two\nline three",z\r\n\r\n3,,last';
    const { records, errors } = parseCsv(text);
    expect(errors).toEqual([]);
    expect(records).toEqual([
      { fields: ['a', 'b', 'c'], line: 1 },
      { fields: ['1', 'x, y', 'say "hi"'], line: 2 },
      { fields: ['2', 'line one\r\nline two\nline three', 'z'], line: 3 },
      { fields: ['3', '', 'last'], line: 7 },
    ]);
  });

  it('reports a quote never closed at the line its record starts', () => {
    const { records, errors } = parseCsv('a,b\n1,2\n3,"open\n4,5\n');
    expect(records.map((r) => r.line)).toEqual([1, 2]);
    expect(errors).toEqual([{ line: 3, reason: 'a quoted field is never closed' }]);
  });
});

describe('MCQ files', () => {
  it('subject from the file name, without _test/_val/_dev', () => {
    expect(subjectOfFile('test/accountant_val.csv')).toBe('accountant');
    expect(subjectOfFile('注册会计师（CPA）.csv')).toBe('注册会计师（CPA）');
    expect(subjectOfFile('dev/bank_dev.jsonl')).toBe('bank');
  });

  it('FinanceIQ/CMMLU layout: unnamed index column, capitalised header, multiline quoted question, BOM', () => {
    const csv = '\ufeff,Question,A,B,C,D,Answer\n0,"下列哪项\n属于货币政策工具？",再贴现,"税收,减免",国债发行,财政补贴,A\n1,问题二,甲,乙,丙,丁,d\n';
    const { questions, rejects } = parseMcqCsv(csv, 'finance.csv');
    expect(rejects).toEqual([]);
    expect(questions).toEqual([
      { subject: 'finance', id: '0', question: '下列哪项\n属于货币政策工具？', options: ['再贴现', '税收,减免', '国债发行', '财政补贴'], answer: 'A', file: 'finance.csv', line: 2 },
      { subject: 'finance', id: '1', question: '问题二', options: ['甲', '乙', '丙', '丁'], answer: 'D', file: 'finance.csv', line: 4 },
    ]);
  });

  it('C-Eval layout: id,question,A,B,C,D,answer,explanation, CRLF', () => {
    const csv = 'id,question,A,B,C,D,answer,explanation\r\n7,Q,a,b,c,d,B,"because, reasons"\r\n';
    const { questions, rejects } = parseMcqCsv(csv, 'accountant_val.csv');
    expect(rejects).toEqual([]);
    expect(questions).toEqual([{ subject: 'accountant', id: '7', question: 'Q', options: ['a', 'b', 'c', 'd'], answer: 'B', file: 'accountant_val.csv', line: 2 }]);
  });

  it('malformed rows are rejected with file and physical line and skipped; every good row counts', () => {
    const csv = [
      ',Question,A,B,C,D,Answer',
      '0,ok one,a,b,c,d,A', // line 2
      '1,"multi', // line 3: a 2-line record
      'line",a,b,c,d,E', // bad answer, reported at line 3
      '2,too few,a,b,c,A', // line 5
      '3, ,a,b,c,d,A', // line 6: empty question
      '4,ok two,a,,c,d,C', // line 7: empty option B
      '5,ok three,a,b,c,d,C', // line 8
      '6,extra,a,b,c,d,C,x', // line 9
    ].join('\n');
    const { questions, rejects } = parseMcqCsv(csv, 'sub.csv');
    expect(questions.map((q) => [q.id, q.line])).toEqual([
      ['0', 2],
      ['5', 8],
    ]);
    expect(rejects).toEqual([
      { file: 'sub.csv', line: 3, reason: 'answer "E" is not one of A, B, C, D' },
      { file: 'sub.csv', line: 5, reason: '6 fields, the header has 7' },
      { file: 'sub.csv', line: 6, reason: 'empty question' },
      { file: 'sub.csv', line: 7, reason: 'empty option B' },
      { file: 'sub.csv', line: 9, reason: '8 fields, the header has 7' },
    ]);
  });

  it('a header without the question columns rejects the file at line 1', () => {
    const { questions, rejects } = parseMcqCsv('x,y\n1,2\n', 'bad.csv');
    expect(questions).toEqual([]);
    expect(rejects).toHaveLength(1);
    expect(rejects[0]).toMatchObject({ file: 'bad.csv', line: 1 });
  });

  it('JSONL: fields case-insensitive, subject from the line or the file, rejects with line numbers', () => {
    const jsonl = [
      '{"question":"Q1","A":"a","B":"b","C":"c","D":"d","answer":"C"}',
      '',
      '{"Question":"Q2","A":"a","B":"b","C":"c","D":1.5,"Answer":"D","subject":"bank"}',
      'not json',
      '{"question":"Q4","A":"a","B":"b","C":"c","D":"d","answer":"Z"}',
      '{"question":"Q5","A":"a","B":"b","C":"c","answer":"A"}',
    ].join('\n');
    const { questions, rejects } = parseMcqJsonl(jsonl, 'misc_test.jsonl');
    expect(questions.map((q) => [q.subject, q.question, q.options[3], q.answer, q.line])).toEqual([
      ['misc', 'Q1', 'd', 'C', 1],
      ['bank', 'Q2', '1.5', 'D', 3],
    ]);
    expect(rejects.map((r) => [r.line, r.reason.split(':')[0]])).toEqual([
      [4, 'not JSON'],
      [5, 'answer "Z" is not one of A, B, C, D'],
      [6, 'empty option D'],
    ]);
  });
});

describe('readMcqData', () => {
  const root = mkdtempSync(join(tmpdir(), 'xyp-mcq-'));
  afterAll(() => rmSync(root, { recursive: true, force: true }));
  const row = (i: number, answer = 'A') => `${i},问题${i},a${i},b${i},c${i},d${i},${answer}`;

  it('a directory with test/ and dev/: test is scored, dev gives exemplars, rejects name the relative file', () => {
    const dir = join(root, 'bench');
    mkdirSync(join(dir, 'test'), { recursive: true });
    mkdirSync(join(dir, 'dev'), { recursive: true });
    writeFileSync(join(dir, 'test', 'bank_test.csv'), [',Question,A,B,C,D,Answer', row(0), row(1, 'X'), row(2)].join('\n'));
    writeFileSync(join(dir, 'test', 'tax.jsonl'), '{"question":"q","A":"1","B":"2","C":"3","D":"4","answer":"B"}\n');
    writeFileSync(join(dir, 'dev', 'bank_dev.csv'), [',Question,A,B,C,D,Answer', row(10), row(11)].join('\n'));
    writeFileSync(join(dir, 'notes.txt'), 'ignored');
    const data = readMcqData(dir);
    expect(data.split).toBe('test');
    expect(data.questions.map((q) => `${q.subject}/${q.id}`)).toEqual(['bank/0', 'bank/2', 'tax/test/tax.jsonl:1']);
    expect(data.dev.map((q) => `${q.subject}/${q.id}`)).toEqual(['bank/10', 'bank/11']);
    expect(data.rejects).toEqual([{ file: join('test', 'bank_test.csv'), line: 3, reason: 'answer "X" is not one of A, B, C, D' }]);
    expect(data.files.map((f) => [f.file, f.split, f.questions, f.rejects])).toEqual([
      [join('dev', 'bank_dev.csv'), 'dev', 2, 0],
      [join('test', 'bank_test.csv'), 'test', 2, 1],
      [join('test', 'tax.jsonl'), 'test', 1, 0],
    ]);
  });

  it('a flat directory and a single file', () => {
    const dir = join(root, 'flat');
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'a.csv'), ['id,question,A,B,C,D,answer', 'x,q,1,2,3,4,A'].join('\n'));
    writeFileSync(join(dir, 'b.csv'), ['id,question,A,B,C,D,answer', 'y,q,1,2,3,4,B'].join('\n'));
    expect(readMcqData(dir).questions.map((q) => q.subject)).toEqual(['a', 'b']);
    const one = readMcqData(join(dir, 'b.csv'));
    expect(one.questions).toHaveLength(1);
    expect(one.dev).toEqual([]);
  });

  it('the bundled sample (data/sample/mcq): 4 subjects × 12 test questions, 3 dev each, no rejects', () => {
    const data = readMcqData(join(__dirname, '../../../data/sample/mcq'));
    expect(data.rejects).toEqual([]);
    expect(data.questions).toHaveLength(48);
    expect(data.dev).toHaveLength(12);
    const subjects = [...new Set(data.questions.map((q) => q.subject))];
    expect(subjects).toEqual(['保险从业资格', '注册会计师（CPA）', '证券从业资格', '银行从业资格']);
    expect(data.questions.find((q) => q.options.includes('1,000元'))?.answer).toBe('C');
  });

  it('val/ is scored when there is no test/ (C-Eval)', () => {
    const dir = join(root, 'ceval');
    mkdirSync(join(dir, 'val'), { recursive: true });
    writeFileSync(join(dir, 'val', 'accountant_val.csv'), ['id,question,A,B,C,D,answer,explanation', '0,q,1,2,3,4,C,'].join('\n'));
    const data = readMcqData(dir);
    expect(data.split).toBe('val');
    expect(data.questions.map((q) => q.subject)).toEqual(['accountant']);
  });
});
