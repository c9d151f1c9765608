/**
 * Entry of the fresh process that times a prepared train step (started by `timeTrainStep` in
 * ./compare.ts), so the peak memory it reports is the training's own: reads the options as JSON from
 * argv[2] and prints the result as one JSON line on stdout.
 */
import { benchTrainStep, type TrainStepBenchOptions } from './train-step';

async function main(): Promise<void> {
  const options = JSON.parse(process.argv[2] ?? '') as TrainStepBenchOptions;
  const result = await benchTrainStep(options);
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

if (require.main === module) {
  main().catch((err: unknown) => {
    process.stderr.write(`error: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  });
}
