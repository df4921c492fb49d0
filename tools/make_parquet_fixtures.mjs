// Writes the Parquet test fixtures of the datasets module (datasets/src/test/resources/parquet/)
// with DuckDB, which lays nested columns out as pyarrow does for HF datasets: list<struct<...>>
// with snappy compression (pyarrow's default), and a zstd file.
//   npm install @duckdb/node-api && node tools/make_parquet_fixtures.mjs OUT_DIR
import { DuckDBInstance } from '@duckdb/node-api';

const out = process.argv[2] ?? 'datasets/src/test/resources/parquet';
const db = await DuckDBInstance.create(':memory:');
const c = await db.connect();
// OpenAI messages, the chat format of most HF chat datasets; row 3 has a system message and a
// NULL content (an invalid record), row 4 an empty list
await c.run(`COPY (
  SELECT * FROM (VALUES
    (1, [{'role': 'user', 'content': 'What is 2+2?'}, {'role': 'assistant', 'content': '4'}]),
    (2, [{'role': 'user', 'content': 'Héllo, 世界'}, {'role': 'assistant', 'content': 'Hi!'},
         {'role': 'user', 'content': 'And 3+3?'}, {'role': 'assistant', 'content': '6'}]),
    (3, [{'role': 'system', 'content': 'Be brief.'}, {'role': 'user', 'content': NULL},
         {'role': 'assistant', 'content': 'ok'}]),
    (4, []::STRUCT(role VARCHAR, content VARCHAR)[])
  ) t(id, messages) ORDER BY id
) TO '${out}/messages.parquet' (FORMAT parquet, COMPRESSION snappy)`);
// ShareGPT conversations, zstd
await c.run(`COPY (
  SELECT * FROM (VALUES
    ([{'from': 'human', 'value': 'Name a colour.'}, {'from': 'gpt', 'value': 'Blue.'}], 'src-a'),
    ([{'from': 'system', 'value': 'You count.'}, {'from': 'human', 'value': '1, 2, ...'},
      {'from': 'gpt', 'value': '3'}], 'src-b')
  ) t(conversations, source)
) TO '${out}/sharegpt.parquet' (FORMAT parquet, COMPRESSION zstd)`);
// Alpaca: flat strings, input NULL in one row
await c.run(`COPY (
  SELECT * FROM (VALUES
    ('Add the numbers.', '2 and 3', '5'),
    ('Say hi.', NULL, 'hi')
  ) t(instruction, input, output)
) TO '${out}/alpaca.parquet' (FORMAT parquet, COMPRESSION snappy)`);
console.log('wrote', out);
