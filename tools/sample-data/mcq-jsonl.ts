/** Writes data/sample/mcq.jsonl, the JSONL form (one file, a `subject` per line) of the sample MCQ CSVs in data/sample/mcq/test: what the bundled recipe's eval stages read. */
import { writeFileSync } from 'node:fs';
import { readMcqData } from '@xyp/policy-eval';
const data = readMcqData('data/sample/mcq');
const lines = data.questions.map((q) => JSON.stringify({ subject: q.subject, id: q.id, question: q.question, A: q.options[0], B: q.options[1], C: q.options[2], D: q.options[3], answer: q.answer }));
writeFileSync('data/sample/mcq.jsonl', lines.join('\n') + '\n');
process.stderr.write(`wrote ${lines.length} questions to data/sample/mcq.jsonl (${data.rejects.length} rows rejected)\n`);
