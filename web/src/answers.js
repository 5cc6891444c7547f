// Labelled answers: what a classifier says about one input, by label rather than by index.
// A port of edgeinfer/answers.py.

/**
 * One input's answer. `label` is the most likely class and `probability` its probability;
 * `scores` holds every class's probability by label; `flags` names what makes the answer
 * doubtful: "unclear" (an image that does not look like one digit on plain paper),
 * "low_coverage" (a text whose words the model mostly does not know).
 * @typedef {object} Answer
 * @property {string} source  what was read: "image 0", "text 3", "sequence 0"
 * @property {string} label
 * @property {number} probability
 * @property {Record<string, number>} scores
 * @property {string[]} flags
 */

/**
 * Rows of class probabilities (N x C, row-major) -> N answers, in order.
 * @param {ArrayLike<number>} probabilities
 * @param {readonly string[]} labels
 * @param {readonly string[]} sources
 * @param {ReadonlyArray<readonly string[]>} [flags]
 * @returns {Answer[]}
 */
export function answersFrom(probabilities, labels, sources, flags) {
  const classes = labels.length;
  /** @type {Answer[]} */
  const out = [];
  for (let i = 0; i < sources.length; i++) {
    let best = 0;
    /** @type {Record<string, number>} */
    const scores = {};
    for (let c = 0; c < classes; c++) {
      const p = probabilities[i * classes + c];
      scores[labels[c]] = p;
      if (p > probabilities[i * classes + best]) best = c; // ties: the lowest index, as numpy's argmax
    }
    out.push({ source: sources[i], label: labels[best], probability: probabilities[i * classes + best], scores,
      flags: [...(flags?.[i] ?? [])] });
  }
  return out;
}
