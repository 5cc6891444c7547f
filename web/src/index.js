// edgeinfer-web: run edgeinfer model files (small recurrent models exported to ONNX) in Node and
// in the browser through onnxruntime-web, concept for concept like the Python runtime.
//
//   import { load, generate } from "edgeinfer-web";
//   const model = await load("models/digits.onnx");     // a Model: spec, predict, stream
//   const stream = model.stream();                      // a Stream: step, feed, snapshot, restore
//   const p = await stream.step(new Float32Array(28));  // the answers after one step (probabilities or values)

export { checkFinite, softmax } from "./arrays.js";
export { DEFAULT_TEMPERATURE, Random, charTokenizer, generate, nextId, score } from "./characters.js";
export {
  EdgeInferError, ImageError, InputError, ModelFileError, ProviderError, SpecError, WrongTaskError,
} from "./errors.js";
export {
  checkSelfRanges, checksums, externalTensors, initializerRanges, parseModelFile, readMetadata,
} from "./fileformat.js";
export { preprocessImage } from "./image.js";
export { LOAD_TIMEOUT_MS, MAX_MODEL_BYTES, Model, load } from "./model.js";
export { ort, runtimeVersions } from "./runtime.js";
export { MIN_KNOWN_FRACTION, TextStream, classifyTexts, isLowCoverage, predictTexts, textChunks, textTokenizer } from "./sentiment.js";
export { answersFrom } from "./answers.js";
export { sha256Hex } from "./sha256.js";
export { MAX_SNAPSHOT_BYTES, SNAPSHOT_MAGIC, Snapshot } from "./snapshot.js";
export {
  FORMAT_VERSION, answers, givesClasses, initialState, labels, normalizeFeatures, parseSpec, perStep, readout, readsTokens,
  requireInput, specFromDict, specToDict, stateFor, tokenIds, vocabSize,
} from "./spec.js";
export { MAX_STREAM_BATCH, Stream } from "./stream.js";
export { CharTokenizer, Tokenizer, WordBuffer, charIds, tokenize, words } from "./text.js";
