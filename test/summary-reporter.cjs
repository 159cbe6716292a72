// mocha's spec reporter on screen, plus the run's stats written as JSON for
// test/run.mjs to print the summary line from.
const Mocha = require('mocha');
const fs = require('node:fs');
const { EVENT_RUN_END } = Mocha.Runner.constants;
class SummaryReporter extends Mocha.reporters.Spec {
  constructor(runner, options) {
    super(runner, options);
    const out = options.reporterOption && options.reporterOption.json;
    runner.once(EVENT_RUN_END, () => { if (out) fs.writeFileSync(out, JSON.stringify(runner.stats)); });
  }
}
module.exports = SummaryReporter;
