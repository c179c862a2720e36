// The shape of a hand-written mapping: the payload and the mapping's own functions (bound to its
// lookup tables) in, the canonical entity's raw value out.
import type {
  createLookup,
  money,
  moneyAdd,
  moneyMul,
  moneySub,
  moneySum,
} from '../../runtime/mapping/functions.ts';

export interface MappingFunctions {
  lookup: ReturnType<typeof createLookup>;
  money: typeof money;
  moneyAdd: typeof moneyAdd;
  moneySub: typeof moneySub;
  moneyMul: typeof moneyMul;
  moneySum: typeof moneySum;
}

export type Handwritten = (payload: unknown, functions: MappingFunctions) => unknown;
