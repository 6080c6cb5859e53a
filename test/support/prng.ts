/** The PRNG lives in lib/ (the chaos middleware uses it too); kept here for the tests' and the benchmark's imports. */
export { seededRandom } from "../../lib/prng";
