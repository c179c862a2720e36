// JSONata AST (as jsonata's own parser leaves it, after its post-parse stage) -> JavaScript source.
//
// The generated code does what the interpreter's evaluate() does for each node, in the same order, with
// the node-type dispatch, the environment look-ups and the async machinery compiled away. Variables
// become JavaScript constants: `$x := ...` in a block is seen by the statements after it, so each
// reference resolves at compile time to the binding in force there (jsonata resolves a lambda's
// variables when the lambda runs; lambdas are compiled only where that is the same binding, see
// genNamedLambda). Sequence handling calls the helpers of ./runtime.ts, which mirror the interpreter's.
// Where exactness would need the interpreter's dynamic machinery (tuple streams, recursion, function
// values, regexes...), the compiler refuses the whole expression (throws Unsupported) and the caller
// keeps the interpreter.
import { TallyError } from '../../../api/errors.ts';
import {
  builtin,
  CLOCK,
  HIGHER_ORDER,
  type NativeFunction,
  STRING_MATCHERS,
  SYNC_BUILTINS,
} from './builtins.ts';

/** The parts of jsonata's AST nodes the compiler reads. */
export interface AstNode {
  type: string;
  value?: unknown;
  position?: number;
  steps?: AstNode[];
  stages?: AstNode[];
  predicate?: AstNode[];
  expr?: AstNode;
  expressions?: AstNode[];
  expression?: AstNode;
  lhs?: AstNode | AstNode[][];
  rhs?: AstNode;
  condition?: AstNode;
  then?: AstNode;
  else?: AstNode;
  procedure?: AstNode;
  arguments?: AstNode[];
  body?: AstNode;
  thunk?: boolean;
  signature?: unknown;
  keepArray?: boolean;
  keepSingletonArray?: boolean;
  consarray?: boolean;
  group?: unknown;
  tuple?: boolean;
  focus?: unknown;
  index?: unknown;
  ancestor?: unknown;
  seekingParent?: unknown;
}

/** The compiler declines: the reason says which construct, for logs and the conformance report. */
export class Unsupported extends TallyError {
  override name = 'Unsupported';
  readonly code = 'FAST_PATH_UNSUPPORTED';
}

export interface CodegenOptions {
  /** Functions callable as `$name` besides the built-ins (they win over a built-in of the same name). */
  functions: ReadonlySet<string>;
  /** Those of `functions` that declare a signature: calls of them are not compiled. */
  signed: ReadonlySet<string>;
  /** Variables supplied with each evaluation (jsonata's `bindings`). */
  variables: ReadonlySet<string>;
}

export interface GeneratedCode {
  /** The body of `new Function('rt', 'K', 'F', body)`; it returns `(input, $ext, $focus) => result`. */
  body: string;
  /** Constants the code refers to as K[i] (function definitions, key lists). */
  constants: unknown[];
  /** Call nodes (or function arguments) that run a named lambda -> that lambda, for the depth bound. */
  callTargets: ReadonlyMap<AstNode, AstNode>;
}

/** How a lambda was handed to the function that calls it; decides the context of its tail calls. */
type TailContext = string;

/**
 * What a JSONata variable name means at one point of the expression: a value (held in a JavaScript
 * constant), a lambda bound by `$f := function(...) {...}` (compiled to a JavaScript function taking the
 * tail-call context first), or a name the compiler cannot resolve statically there (see genNamedLambda).
 */
type Binding =
  | { kind: 'value'; js: string }
  | { kind: 'lambda'; fn: string; node: AstNode; arity: number; defContext: string }
  | { kind: 'dynamic' };

interface Scope {
  vars: Map<string, Binding>;
}

/** Normalisations still owed by a tail position (see genTail). */
type Pending = AstNode[];

const RUNTIME_NAMES = [
  'seq',
  'seq1',
  'isSeq',
  'norm',
  'normKeep',
  'lookup',
  'namesPath',
  'MISS',
  'wildcard',
  'descendants',
  'appendInto',
  'markCons',
  'truthy',
  'add',
  'sub',
  'mul',
  'div',
  'mod',
  'neg',
  'eq',
  'ne',
  'lt',
  'le',
  'gt',
  'ge',
  'includes',
  'range',
  'filterIndex',
  'predicateCount',
  'flattenStep',
  'keepSingletonArray',
  'groupContext',
  'groupBy',
  'contextValue',
  'settle',
  'tick',
  'callNative',
  'stringOf',
  'str',
  'numberText',
  'hofMap',
  'hofFilter',
  'hofSingle',
  'hofReduce',
  'hofEach',
  'hofSift',
  'hofSort',
  'sortOrder',
  'contains',
  'split',
  'replace',
  'nowDef',
  'millisDef',
] as const;

const SYNC = new Set<string>(SYNC_BUILTINS);
const HOF = new Set<string>(HIGHER_ORDER);
const MATCHERS = new Set<string>(STRING_MATCHERS);
const CLOCKS = new Set<string>(CLOCK);

/** Node types whose value is never a sequence, so evaluate()'s normalisation cannot change it. */
function neverSequence(node: AstNode): boolean {
  switch (node.type) {
    case 'string':
    case 'number':
    case 'value':
      return true;
    case 'unary':
      return true; // '-' gives a number, '[' a plain array, '{' an object
    case 'binary':
      return node.value !== '..';
    default:
      return false;
  }
}

const IDENTIFIER = /^[A-Za-z_$][A-Za-z0-9_$]*$/;

export function generate(ast: AstNode, options: CodegenOptions): GeneratedCode {
  return new Generator(options).program(ast);
}

class Generator {
  private lines: string[] = [];
  private counter = 0;
  /** Custom function name -> the constant holding its implementation. */
  private readonly customs = new Map<string, string>();
  /** Temporaries holding a value evaluate() has already normalised for the node that produced it. */
  private readonly normalised = new Set<string>();
  /** Calls of named lambdas -> the lambda they run, for the depth bound. */
  readonly callTargets = new Map<AstNode, AstNode>();
  private readonly constants: unknown[] = [];
  private readonly options: CodegenOptions;

  constructor(options: CodegenOptions) {
    this.options = options;
  }

  program(ast: AstNode): GeneratedCode {
    const scope: Scope = { vars: new Map() };
    this.emit('const $root = input;');
    // evaluate() wraps an input array so that the expression treats it as one value.
    this.emit(
      'if (Array.isArray(input) && !isSeq(input)) { input = seq1(input); input.outerWrapper = true; }',
    );
    const result = this.gen(ast, 'input', scope);
    this.emit(`return ${result};`);
    const prologue = [
      '"use strict";',
      `const { ${RUNTIME_NAMES.join(', ')} } = rt;`,
      ...this.constants.map((_, i) => `const K${i} = K[${i}];`),
      ...[...this.customs].map(([name, js]) => `const ${js} = F[${JSON.stringify(name)}].implementation;`),
      'return function evaluate(input, $ext, $focus) {',
    ];
    return {
      body: [...prologue, ...this.lines, '};'].join('\n'),
      constants: this.constants,
      callTargets: this.callTargets,
    };
  }

  // ---- emission helpers

  private emit(line: string): void {
    this.lines.push(line);
  }

  private tmp(prefix = 't'): string {
    return `${prefix}${this.counter++}`;
  }

  /** Generate into a separate buffer (a branch or loop body); returns its lines and result. */
  private capture(fn: () => string): { code: string; result: string } {
    const saved = this.lines;
    this.lines = [];
    const result = fn();
    const code = this.lines.join('\n');
    this.lines = saved;
    return { code, result };
  }

  private constant(value: unknown): string {
    let i = this.constants.indexOf(value);
    if (i < 0) {
      i = this.constants.length;
      this.constants.push(value);
    }
    return `K${i}`;
  }

  /** A value held in a fresh constant, so the returned expression is cheap and evaluated once. */
  private hold(expression: string): string {
    if (IDENTIFIER.test(expression) || expression === 'undefined') return expression;
    const t = this.tmp();
    this.emit(`const ${t} = ${expression};`);
    return t;
  }

  // ---- evaluate()

  /** evaluate(node, c): the node's value with its predicates applied and the result normalised. */
  private gen(node: AstNode, c: string, scope: Scope): string {
    this.check(node);
    let r = this.genNode(node, c, scope);
    if (node.predicate) {
      for (const stage of node.predicate) r = this.genFilterStage(stage, r, scope);
    }
    if (node.group !== undefined && node.type !== 'path') {
      // A group-by `{...}` on a value (on a path, genPath applies it): an object, nothing to normalise.
      return this.genGroup(node.group as Group, r, scope);
    }
    if (node.predicate || !neverSequence(node)) r = this.normalise(node, r);
    return r;
  }

  private normalise(node: AstNode, r: string): string {
    if (!node.keepArray && this.normalised.has(r)) return r;
    return this.hold(node.keepArray ? `normKeep(${r})` : `norm(${r})`);
  }

  /** Constructs that need the interpreter's tuple streams, grouping or ancestry: not compiled. */
  private check(node: AstNode): void {
    if (node.ancestor !== undefined || node.seekingParent !== undefined || node.type === 'parent') {
      throw new Unsupported('parent operator (%)');
    }
    if (node.tuple || node.focus !== undefined || node.index !== undefined) {
      throw new Unsupported('focus (@) or index (#) variable binding');
    }
  }

  private genNode(node: AstNode, c: string, scope: Scope): string {
    switch (node.type) {
      case 'string':
        return JSON.stringify(node.value);
      case 'number': {
        const v = node.value as number;
        return Object.is(v, -0) ? '-0' : String(v);
      }
      case 'value':
        return node.value === null ? 'null' : node.value === true ? 'true' : 'false';
      case 'path':
        return this.genPath(node, c, scope);
      case 'name':
        return this.hold(`lookup(${c}, ${JSON.stringify(node.value)})`);
      case 'wildcard':
        return this.hold(`wildcard(${c})`);
      case 'descendant':
        return this.hold(`descendants(${c})`);
      case 'variable':
        return this.genVariable(node, c, scope);
      case 'block':
        return this.genBlock(node, c, scope, null);
      case 'condition':
        return this.genCondition(node, c, scope, null);
      case 'binary':
        return this.genBinary(node, c, scope);
      case 'unary':
        return this.genUnary(node, c, scope);
      case 'function':
        return this.genCall(node, c, scope, { context: c });
      case 'apply':
        return this.genApply(node, c, scope);
      case 'bind':
        throw new Unsupported('variable binding outside a block ( ... )');
      case 'lambda':
        throw new Unsupported('a function value other than an argument of a higher-order built-in');
      case 'parent':
        throw new Unsupported('parent operator (%)');
      case 'sort':
        throw new Unsupported('order-by ^(...) outside a path');
      case 'transform':
        throw new Unsupported('transform |...|');
      case 'regex':
        throw new Unsupported('regular expression');
      case 'partial':
        throw new Unsupported('partial application');
      default:
        throw new Unsupported(`expression type ${node.type}`);
    }
  }

  // ---- paths

  private genPath(node: AstNode, c: string, scope: Scope): string {
    const steps = node.steps ?? [];
    if (steps.length === 0) throw new Unsupported('empty path');
    const simple =
      !node.keepSingletonArray &&
      !node.keepArray &&
      node.group === undefined &&
      steps.every(
        (s) =>
          s.type === 'name' &&
          !s.stages &&
          !s.predicate &&
          !s.keepArray &&
          s.group === undefined &&
          !s.tuple &&
          s.focus === undefined &&
          s.index === undefined &&
          s.ancestor === undefined,
      );
    if (!simple) return this.genPathGeneral(node, steps, c, scope);
    // Field names over objects: no sequences needed unless an array turns up (then the general code).
    const keys = this.constant(Object.freeze(steps.map((s) => String(s.value))));
    const r = this.tmp('p');
    this.emit(`let ${r} = Array.isArray(${c}) ? MISS : namesPath(${c}, ${keys});`);
    const general = this.capture(() => this.genPathGeneral(node, steps, c, scope));
    // namesPath never gives a sequence, so only the general code's result needs evaluate()'s tail.
    this.emit(`if (${r} === MISS) {`);
    this.emit(general.code);
    this.emit(`${r} = norm(${general.result});`);
    this.emit('}');
    this.normalised.add(r);
    return r;
  }

  /** evaluatePath */
  private genPathGeneral(node: AstNode, steps: AstNode[], c: string, scope: Scope): string {
    const first = steps[0] as AstNode;
    const input = this.tmp('in');
    const rs = this.tmp('rs');
    const label = this.tmp('L');
    this.emit(
      first.type === 'variable'
        ? `let ${input} = seq1(${c});`
        : `let ${input} = Array.isArray(${c}) ? ${c} : seq1(${c});`,
    );
    this.emit(`let ${rs};`);
    this.emit(`${label}: {`);
    steps.forEach((step, i) => {
      this.check(step);
      let value: string;
      if (i === 0 && step.consarray) {
        value = this.gen(step, input, scope);
      } else {
        value = this.genStep(step, input, scope, i === steps.length - 1);
      }
      this.emit(`${rs} = ${value};`);
      this.emit(`if (${rs} === undefined || ${rs}.length === 0) break ${label};`);
      if (i < steps.length - 1) this.emit(`${input} = ${rs};`);
    });
    this.emit('}');
    if (node.keepSingletonArray) this.emit(`${rs} = keepSingletonArray(${rs});`);
    if (node.group !== undefined) return this.genGroup(node.group as Group, rs, scope);
    return rs;
  }

  /** evaluateStep: the step evaluated for every item of the input sequence, then flattened. */
  private genStep(step: AstNode, input: string, scope: Scope, last: boolean): string {
    if (step.type === 'sort') return this.genSort(step, input, scope);
    const results = this.tmp('res');
    const k = this.tmp('k');
    const item = this.tmp('it');
    this.emit(`const ${results} = [];`);
    this.emit(`for (let ${k} = 0; ${k} < ${input}.length; ${k}++) {`);
    this.emit('tick();');
    this.emit(`const ${item} = ${input}[${k}];`);
    let value = this.gen(step, item, scope);
    for (const stage of step.stages ?? []) value = this.genFilterStage(stage, value, scope);
    this.emit(`if (${value} !== undefined) ${results}.push(${value});`);
    this.emit('}');
    return this.hold(`flattenStep(${results}, ${last})`);
  }

  /**
   * An order-by step `^(...)` (evaluateSortExpression): jsonata's merge sort of the whole input, with a
   * comparator that evaluates the terms for both items at every comparison, as the interpreter does.
   */
  private genSort(step: AstNode, input: string, scope: Scope): string {
    const terms = (step as AstNode & { terms?: { descending?: boolean; expression: AstNode }[] }).terms ?? [];
    const a = this.tmp('sa');
    const b = this.tmp('sb');
    const comparator = this.tmp('cmp');
    const body = this.capture(() => {
      for (const term of terms) {
        const order = this.tmp('ord');
        // Each term in its own JS block: the terms' temporaries must not clash.
        this.emit('{');
        const x = this.gen(term.expression, a, scope);
        const y = this.gen(term.expression, b, scope);
        this.emit(`const ${order} = sortOrder(${x}, ${y}, ${term.descending === true});`);
        this.emit(`if (${order} !== 0) return ${order} === 1;`);
        this.emit('}');
      }
      return 'false';
    });
    this.emit(`const ${comparator} = (${a}, ${b}) => {`);
    this.emit(body.code);
    this.emit(`return ${body.result};`);
    this.emit('};');
    let result = this.hold(`hofSort(${input}, ${comparator})`);
    for (const stage of step.stages ?? []) result = this.genFilterStage(stage, result, scope);
    return result;
  }

  /** evaluateFilter for one predicate stage `[...]`. */
  private genFilterStage(stage: AstNode, input: string, scope: Scope): string {
    if (stage.type !== 'filter' || !stage.expr) throw new Unsupported('index (#) variable binding');
    const predicate = stage.expr;
    if (predicate.type === 'number') {
      return this.hold(`filterIndex(${input}, ${this.genNode(predicate, 'undefined', scope)})`);
    }
    const list = this.tmp('fl');
    const out = this.tmp('fo');
    const k = this.tmp('k');
    const item = this.tmp('fi');
    const n = this.tmp('n');
    this.emit(`const ${list} = Array.isArray(${input}) ? ${input} : seq1(${input});`);
    this.emit(`const ${out} = seq();`);
    this.emit(`for (let ${k} = 0; ${k} < ${list}.length; ${k}++) {`);
    this.emit('tick();');
    this.emit(`const ${item} = ${list}[${k}];`);
    const value = this.gen(predicate, item, scope);
    this.emit(
      `for (let ${n} = predicateCount(${value}, ${k}, ${list}.length); ${n} > 0; ${n}--) ${out}.push(${item});`,
    );
    this.emit('}');
    return out;
  }

  // ---- variables, blocks, conditions

  private genVariable(node: AstNode, c: string, scope: Scope): string {
    const name = String(node.value);
    if (name === '') return this.hold(`contextValue(${c})`);
    const bound = scope.vars.get(name);
    if (bound !== undefined) {
      if (bound.kind === 'value') return bound.js;
      if (bound.kind === 'lambda') throw new Unsupported(`the lambda $${name} used as a value`);
      throw new Unsupported(`$${name} in a lambda bound before it (its value is only known when it runs)`);
    }
    if (name === '$') return '$root';
    if (this.options.variables.has(name)) return this.hold(`$ext[${JSON.stringify(name)}]`);
    if (this.isFunctionName(name)) throw new Unsupported(`the function $${name} used as a value`);
    return 'undefined';
  }

  private isFunctionName(name: string): boolean {
    return (
      this.options.functions.has(name) ||
      SYNC.has(name) ||
      HOF.has(name) ||
      MATCHERS.has(name) ||
      CLOCKS.has(name) ||
      ['eval', 'match', 'random', 'shuffle'].includes(name)
    );
  }

  /** evaluateBlock: a new frame; `$x := ...` statements bind in it for the statements after them. */
  private genBlock(node: AstNode, c: string, outer: Scope, tail: TailState | null): string {
    const scope: Scope = { vars: new Map(outer.vars) };
    const expressions = node.expressions ?? [];
    const boundAt = (name: string) =>
      expressions.flatMap((e, i) =>
        e.type === 'bind' && String((e.lhs as AstNode).value) === name ? [i] : [],
      );
    let result = 'undefined';
    expressions.forEach((e, i) => {
      const isLast = i === expressions.length - 1;
      if (e.type === 'bind' && (e.rhs as AstNode).type === 'lambda') {
        // (the lambda object itself, the statement's value, is never used: it is not the last one)
        const name = String((e.lhs as AstNode).value);
        if (isLast) throw new Unsupported(`the lambda $${name} as the value of a block`);
        if (boundAt(name).length > 1) throw new Unsupported(`$${name} bound to a lambda and rebound`);
        // Names this block binds from here on: a lambda body that reads one of them would see whichever
        // value the frame holds when the lambda is called, which is not known here.
        const later = new Set(
          expressions.slice(i).flatMap((x) => (x.type === 'bind' ? [String((x.lhs as AstNode).value)] : [])),
        );
        this.genNamedLambda(e, c, scope, later);
      } else if (e.type === 'bind') {
        result = this.genBind(e, c, scope, isLast);
        if (isLast && tail) {
          for (const n of [...tail.pending, node].reverse()) result = this.normalise(n, result);
        }
      } else if (isLast && tail) {
        result = this.genTail(e, c, scope, tail.context, [...tail.pending, node]);
      } else {
        result = this.gen(e, c, scope);
      }
    });
    return result;
  }

  private genBind(node: AstNode, c: string, scope: Scope, valueUsed: boolean): string {
    this.check(node);
    if (node.predicate || node.keepArray) throw new Unsupported('a predicate on a variable binding');
    const lhs = node.lhs as AstNode;
    const name = String(lhs.value);
    if (name === '' || name === '$') throw new Unsupported('binding $ or $$');
    const value = this.gen(node.rhs as AstNode, c, scope);
    const v = this.tmp(`v_${name.replace(/[^A-Za-z0-9_]/g, '_')}_`);
    this.emit(`const ${v} = ${value};`);
    scope.vars.set(name, { kind: 'value', js: v });
    // evaluate(bind) normalises the bound value once more for the bind expression's own value.
    return valueUsed ? this.hold(`norm(${v})`) : 'undefined';
  }

  private genCondition(node: AstNode, c: string, scope: Scope, tail: TailState | null): string {
    const condition = this.gen(node.condition as AstNode, c, scope);
    const r = this.tmp('r');
    const branch = (n: AstNode) =>
      this.capture(() =>
        tail ? this.genTail(n, c, scope, tail.context, [...tail.pending, node]) : this.gen(n, c, scope),
      );
    const then = branch(node.then as AstNode);
    this.emit(`let ${r};`);
    this.emit(`if (truthy(${condition})) {`);
    this.emit(then.code);
    this.emit(`${r} = ${then.result};`);
    if (node.else !== undefined) {
      const otherwise = branch(node.else);
      this.emit('} else {');
      this.emit(otherwise.code);
      this.emit(`${r} = ${otherwise.result};`);
    }
    this.emit('}');
    return r;
  }

  // ---- operators

  private genBinary(node: AstNode, c: string, scope: Scope): string {
    const op = String(node.value);
    const lhs = this.gen(node.lhs as AstNode, c, scope);
    if (op === 'and' || op === 'or') {
      const r = this.tmp('b');
      const rhs = this.capture(() => this.gen(node.rhs as AstNode, c, scope));
      this.emit(`let ${r};`);
      if (op === 'and') {
        this.emit(`if (truthy(${lhs})) {`);
        this.emit(rhs.code);
        this.emit(`${r} = truthy(${rhs.result});`);
        this.emit(`} else ${r} = false;`);
      } else {
        this.emit(`if (truthy(${lhs})) ${r} = true; else {`);
        this.emit(rhs.code);
        this.emit(`${r} = truthy(${rhs.result});`);
        this.emit('}');
      }
      return r;
    }
    const rhs = this.gen(node.rhs as AstNode, c, scope);
    const helper: Record<string, string> = {
      '+': 'add',
      '-': 'sub',
      '*': 'mul',
      '/': 'div',
      '%': 'mod',
      '=': 'eq',
      '!=': 'ne',
      '<': 'lt',
      '<=': 'le',
      '>': 'gt',
      '>=': 'ge',
      '..': 'range',
      in: 'includes',
    };
    if (op === '&') {
      // evaluateStringConcat: fn.string of each side that is defined.
      const text = (x: string) => (x.startsWith('"') ? x : `(${x} === undefined ? "" : str(${x}))`);
      return this.hold(`${text(lhs)} + ${text(rhs)}`);
    }
    const fn = helper[op];
    if (fn === undefined) throw new Unsupported(`operator ${op}`);
    return this.hold(`${fn}(${lhs}, ${rhs})`);
  }

  private genUnary(node: AstNode, c: string, scope: Scope): string {
    switch (node.value) {
      case '-':
        return this.hold(`neg(${this.gen(node.expression as AstNode, c, scope)})`);
      case '[':
        return this.genArray(node, c, scope);
      case '{':
        return this.genObject(node, c, scope);
      default:
        throw new Unsupported(`unary operator ${String(node.value)}`);
    }
  }

  /** The array constructor: items appended (flattened one level) unless they are arrays themselves. */
  private genArray(node: AstNode, c: string, scope: Scope): string {
    const a = this.tmp('a');
    this.emit(`const ${a} = [];`);
    for (const item of node.expressions ?? []) {
      const v = this.gen(item, c, scope);
      if (item.type === 'unary' && item.value === '[') {
        this.emit(`if (${v} !== undefined) ${a}.push(${v});`);
      } else {
        this.emit(`if (${v} !== undefined) appendInto(${a}, ${v});`);
      }
    }
    if (node.consarray) this.emit(`markCons(${a});`);
    return a;
  }

  /** The object constructor (evaluateGroupExpression) for keys that are distinct string literals. */
  private genObject(node: AstNode, c: string, scope: Scope): string {
    const pairs = (node.lhs ?? []) as AstNode[][];
    const keyOf = new Map<string, AstNode>();
    const literal = pairs.every(([k]) => k?.type === 'string' && !k.predicate && !k.keepArray);
    const keys = pairs.map(([k]) => String(k?.value));
    const special = keys.some(
      (k) => k === '__proto__' || k === '_jsonata_lambda' || k === '_jsonata_function',
    );
    if (!literal || special || new Set(keys).size !== keys.length) {
      // Computed or repeated keys: the interpreter's grouping, in full.
      return this.genGroup({ lhs: pairs }, c, scope);
    }
    for (const [k, v] of pairs as [AstNode, AstNode][]) keyOf.set(String(k.value), v);
    // The interpreter collects the keys in an object and evaluates the values in that object's key order
    // (integer-like keys first); the result has the same order.
    const order: Record<string, true> = Object.create(null);
    for (const key of keyOf.keys()) order[key] = true;
    const context = this.hold(`Array.isArray(${c}) ? groupContext(${c}) : ${c}`);
    const o = this.tmp('o');
    this.emit(`const ${o} = {};`);
    for (const key of Object.keys(order)) {
      const v = this.gen(keyOf.get(key) as AstNode, context, scope);
      const prop = IDENTIFIER.test(key) ? `.${key}` : `[${JSON.stringify(key)}]`;
      this.emit(`if (${v} !== undefined) ${o}${prop} = ${v};`);
    }
    return o;
  }

  /**
   * evaluateGroupExpression in general: every key expression for every input item, items with the same
   * key grouped, then each group's value expression in the context of its items.
   */
  private genGroup(group: Group, input: string, scope: Scope): string {
    const keys: string[] = [];
    const values: string[] = [];
    for (const [k, v] of group.lhs as [AstNode, AstNode][]) {
      keys.push(this.genContextFunction(k, scope));
      values.push(this.genContextFunction(v, scope));
    }
    return this.hold(`groupBy(${input}, [${keys.join(', ')}], [${values.join(', ')}])`);
  }

  /** An expression as a JavaScript function of its context, for helpers that evaluate it per item. */
  private genContextFunction(node: AstNode, scope: Scope): string {
    const x = this.tmp('x');
    const body = this.capture(() => this.gen(node, x, scope));
    const fn = this.tmp('cf');
    this.emit(`const ${fn} = (${x}) => {`);
    this.emit(body.code);
    this.emit(`return ${body.result};`);
    this.emit('};');
    return fn;
  }

  // ---- function calls

  private genApply(node: AstNode, c: string, scope: Scope): string {
    const lhs = this.gen(node.lhs as AstNode, c, scope);
    const rhs = node.rhs as AstNode;
    if (rhs.type === 'function') {
      // evaluateApplyExpression calls evaluateFunction directly: the call's own predicate and
      // normalisation are skipped, the apply node's are not.
      return this.genCall(rhs, c, scope, { context: c, applyTo: lhs });
    }
    if (rhs.type === 'variable') {
      const fn = this.resolve(String(rhs.value), scope);
      if (fn.kind === 'custom' || fn.kind === 'native') {
        return this.hold(`callNative(${fn.ref}, [${lhs}], null, $focus)`);
      }
      if (fn.kind === 'lambda') {
        this.callTargets.set(node, fn.binding.node);
        return this.hold(`${fn.binding.fn}(null, ${lhs})`);
      }
    }
    throw new Unsupported('~> with something other than a function call on its right');
  }

  private resolve(name: string, scope: Scope): Resolved {
    const bound = scope.vars.get(name);
    if (bound?.kind === 'lambda') return { kind: 'lambda', binding: bound };
    if (bound?.kind === 'dynamic') {
      throw new Unsupported(
        `calling $${name} where it is not bound yet (recursion, or a lambda bound later)`,
      );
    }
    if (bound !== undefined || name === '' || name === '$') {
      throw new Unsupported(`calling the variable $${name}`);
    }
    if (this.options.variables.has(name)) throw new Unsupported(`calling the bound variable $${name}`);
    if (this.options.signed.has(name)) throw new Unsupported(`$${name}, a function with a signature`);
    if (this.options.functions.has(name)) {
      return { kind: 'custom', ref: `F[${JSON.stringify(name)}]` };
    }
    if (SYNC.has(name)) {
      const def = builtin(name);
      return { kind: 'native', ref: this.constant(def), def };
    }
    if (HOF.has(name)) return { kind: 'hof', name };
    if (MATCHERS.has(name)) return { kind: 'matcher', name };
    if (CLOCKS.has(name)) return { kind: 'clock', name };
    throw new Unsupported(`the function $${name}`);
  }

  /**
   * evaluateFunction: evaluate the arguments in order, then apply. `context` is the value the call's
   * signature fills omitted arguments from (the input, or for a tail call in a lambda, what the
   * trampoline passes); `applyTo` is the left side of `~>`, the first argument.
   */
  private genCall(
    node: AstNode,
    c: string,
    scope: Scope,
    how: { context: string; applyTo?: string; tailOf?: string },
  ): string {
    const procedure = node.procedure as AstNode;
    if (procedure.type !== 'variable' || procedure.predicate || procedure.keepArray) {
      throw new Unsupported('calling something other than a named function');
    }
    const name = String(procedure.value);
    const fn = this.resolve(name, scope);
    const argNodes = node.arguments ?? [];
    if (fn.kind === 'hof') return this.genHigherOrder(fn.name, argNodes, c, scope, how);
    const args: string[] = how.applyTo === undefined ? [] : [how.applyTo];
    for (const a of argNodes) args.push(this.gen(a, c, scope));
    const list = `[${args.join(', ')}]`;
    if (fn.kind === 'lambda') {
      // apply(): the lambda's tail calls get the context this call passes (its input, or ours).
      this.callTargets.set(node, fn.binding.node);
      return this.hold(`${fn.binding.fn}(${[how.context, ...args].join(', ')})`);
    }
    if (fn.kind === 'custom') {
      // applyInner for a function without a signature: called with the focus as `this`.
      const impl = this.customImplementation(name);
      this.emit(`$focus.input = ${how.context};`);
      return this.hold(`settle(${impl}.call(${['$focus', ...args].join(', ')}))`);
    }
    if (fn.kind === 'native') {
      const fast = this.fastBuiltin(name, args, how.context);
      if (fast !== undefined) return this.hold(fast);
      return this.hold(`callNative(${fn.ref}, ${list}, ${how.context}, $focus)`);
    }
    if (fn.kind === 'clock') {
      return this.hold(
        `callNative(${fn.name === 'now' ? 'nowDef' : 'millisDef'}, ${list}, ${how.context}, $focus)`,
      );
    }
    // contains / split / replace: jsonata's signature, then the string-pattern implementation.
    const signature = this.constant(builtin(fn.name).signature);
    const validated = this.hold(`${signature}.validate(${list}, ${how.context})`);
    const impl = fn.name;
    const params = fn.name === 'contains' ? 2 : fn.name === 'split' ? 3 : 4;
    const spread = Array.from({ length: params }, (_, i) => `${validated}[${i}]`).join(', ');
    return this.hold(`${impl}(${spread})`);
  }

  /**
   * Inline versions of the commonest built-ins for the argument types where jsonata's signature check
   * passes the arguments through unchanged; otherwise undefined, and the generic call runs.
   */
  private fastBuiltin(name: string, given: string[], context: string): string | undefined {
    const def = builtin(name);
    // Literal arguments go into constants: the tests below use them as values (1.length is no JS).
    const args = given.map((x) => this.hold(x));
    const generic = `callNative(${this.constant(def)}, [${args.join(', ')}], ${context}, $focus)`;
    // These implementations do not use `this`; the signatures pass these argument types unchanged.
    const impl = () => this.constant(def.implementation);
    const [a, b, c] = args;
    if (args.length === 1 && a !== undefined) {
      switch (name) {
        case 'string':
          return `(typeof ${a} === "string" ? ${a} : typeof ${a} === "number" && Number.isFinite(${a}) ? numberText(${a}) : ${generic})`;
        case 'number':
          return `(typeof ${a} === "number" ? ${a} : typeof ${a} === "string" ? ${impl()}(${a}) : ${generic})`;
        case 'exists':
          return `(${a} !== undefined)`;
        case 'boolean':
          return `(typeof ${a} === "boolean" ? ${a} : ${generic})`;
        case 'not':
          return `(${a} === undefined ? undefined : !truthy(${a}))`;
        case 'count':
          return `(${a} === undefined ? 0 : Array.isArray(${a}) ? ${a}.length : 1)`;
        case 'toMillis':
        case 'lowercase':
        case 'uppercase':
        case 'trim':
        case 'length':
          return `(typeof ${a} === "string" ? ${impl()}(${a}) : ${generic})`;
        default:
          return undefined;
      }
    }
    if (name === 'substring' && (args.length === 2 || args.length === 3)) {
      const numbers = [b, c].filter((x) => x !== undefined).map((x) => `typeof ${x} === "number"`);
      return `(typeof ${a} === "string" && ${numbers.join(' && ')} ? ${impl()}(${args.join(', ')}) : ${generic})`;
    }
    return undefined;
  }

  /** The implementation of a custom function, held in a constant of the generated code. */
  private customImplementation(name: string): string {
    let js = this.customs.get(name);
    if (js === undefined) {
      js = `F${this.customs.size}`;
      this.customs.set(name, js);
    }
    return js;
  }

  /** $map, $filter, $single, $reduce, $each, $sift, $sort with lambda (or named function) arguments. */
  private genHigherOrder(
    name: string,
    argNodes: AstNode[],
    c: string,
    scope: Scope,
    how: { context: string; applyTo?: string; tailOf?: string },
  ): string {
    // In a tail call of a lambda, jsonata hands its function arguments over unwrapped; they then take
    // their own context as the context of their tail calls. $sort cannot call an unwrapped lambda at all.
    const rawLambdas = how.tailOf !== undefined;
    if (rawLambdas && name === 'sort') throw new Unsupported('$sort with a function in a tail call');
    const args: string[] = how.applyTo === undefined ? [] : [how.applyTo];
    const functions: { js: string; arity: number | string }[] = [];
    for (const a of argNodes) {
      this.check(a);
      if (a.type === 'lambda' && !a.thunk) {
        if (a.predicate || a.keepArray) throw new Unsupported('a predicate on a lambda');
        const f = this.genLambda(a, c, scope, rawLambdas ? c : 'null');
        functions.push(f);
        args.push(f.js);
      } else if (a.type === 'variable' && scope.vars.get(String(a.value))?.kind === 'lambda') {
        const fn = this.resolve(String(a.value), scope);
        if (fn.kind !== 'lambda') throw new Unsupported('unreachable');
        // The wrapper closure calls it with no context; an unwrapped lambda (in a tail call) uses its own.
        const js = this.tmp('nl');
        const context = rawLambdas ? fn.binding.defContext : 'null';
        this.emit(`const ${js} = (...a) => ${fn.binding.fn}(${context}, ...a);`);
        this.callTargets.set(a, fn.binding.node);
        functions.push({ js, arity: fn.binding.arity });
        args.push(js);
      } else if (
        a.type === 'variable' &&
        this.isFunctionName(String(a.value)) &&
        !scope.vars.has(String(a.value))
      ) {
        if (rawLambdas) throw new Unsupported('a named function passed in a tail call');
        const fn = this.resolve(String(a.value), scope);
        if (fn.kind !== 'custom' && fn.kind !== 'native') {
          throw new Unsupported(`$${String(a.value)} passed as a function`);
        }
        const js = this.tmp('nf');
        this.emit(`const ${js} = (...a) => callNative(${fn.ref}, a, null, $focus);`);
        functions.push({ js, arity: `${fn.ref}.implementation.length` });
        args.push(js);
      } else {
        args.push(this.gen(a, c, scope));
      }
    }
    const optionalFunction = name === 'single' || name === 'sort';
    if (functions.length === 0 && !optionalFunction) {
      throw new Unsupported(`$${name} without a function argument`);
    }
    const signature = this.constant(builtin(name).signature);
    const va = this.hold(`${signature}.validate([${args.join(', ')}], ${how.context})`);
    // The function argument after validation, and its arity (hofFuncArgs reads the arity).
    const f = this.hold(`${va}[1]`);
    const arity = this.hold(functions.reduce((acc, fn) => `${f} === ${fn.js} ? ${fn.arity} : ${acc}`, '0'));
    this.emit(`if (${f} !== undefined && typeof ${f} !== "function") throw new TypeError("not a function");`);
    switch (name) {
      case 'map':
        return this.hold(`hofMap(${va}[0], ${f}, ${arity})`);
      case 'filter':
        return this.hold(`hofFilter(${va}[0], ${f}, ${arity})`);
      case 'single':
        return this.hold(`hofSingle(${va}[0], ${f}, ${arity})`);
      case 'reduce':
        return this.hold(`hofReduce(${va}[0], ${f}, ${arity}, ${va}[2])`);
      case 'each':
        return this.hold(`hofEach(${va}[0], ${f}, ${arity})`);
      case 'sift':
        return this.hold(`hofSift(${va}[0], ${f}, ${arity})`);
      case 'sort':
        return this.hold(`hofSort(${va}[0], ${f})`);
      default:
        throw new Unsupported(`$${name}`);
    }
  }

  /**
   * A lambda argument as a JavaScript function. Its body is evaluated in the context the lambda was
   * defined in (`c`), with its parameters bound in a new frame.
   */
  private genLambda(
    node: AstNode,
    c: string,
    outer: Scope,
    tailContext: TailContext,
  ): { js: string; arity: number } {
    if (node.signature !== undefined) throw new Unsupported('a lambda with a type signature');
    const params = node.arguments ?? [];
    const scope: Scope = { vars: new Map(outer.vars) };
    const names = params.map((p) => {
      const name = String(p.value);
      const js = this.tmp(`a_${name.replace(/[^A-Za-z0-9_]/g, '_')}_`);
      scope.vars.set(name, { kind: 'value', js });
      return js;
    });
    const body = this.capture(() => this.genTail(node.body as AstNode, c, scope, tailContext, []));
    const js = this.tmp('fn');
    this.emit(`const ${js} = (${names.join(', ')}) => {`);
    this.emit(body.code);
    this.emit(`return ${body.result};`);
    this.emit('};');
    return { js, arity: params.length };
  }

  /**
   * `$f := function(...) {...}` as a statement of a block: a JavaScript function `(tc, ...params)` where
   * tc is the context its tail calls get (apply()'s input). Calls resolve statically: a call can only
   * reach lambdas bound before the caller was defined, so nothing recurses. Names the block binds from
   * this statement on (`later`) are refused inside the body: jsonata reads them from the frame when the
   * lambda runs, which may be after they were (re)bound.
   */
  private genNamedLambda(bind: AstNode, c: string, scope: Scope, later: ReadonlySet<string>): void {
    this.check(bind);
    const lambda = bind.rhs as AstNode;
    this.check(lambda);
    if (bind.predicate || bind.keepArray || lambda.predicate || lambda.keepArray) {
      throw new Unsupported('a predicate on a lambda');
    }
    if (lambda.signature !== undefined) throw new Unsupported('a lambda with a type signature');
    const name = String((bind.lhs as AstNode).value);
    const inner: Scope = { vars: new Map(scope.vars) };
    for (const n of later) inner.vars.set(n, { kind: 'dynamic' });
    const params = (lambda.arguments ?? []).map((p) => {
      const param = String(p.value);
      const js = this.tmp(`a_${param.replace(/[^A-Za-z0-9_]/g, '_')}_`);
      inner.vars.set(param, { kind: 'value', js });
      return js;
    });
    const tc = this.tmp('tc');
    const body = this.capture(() => this.genTail(lambda.body as AstNode, c, inner, tc, []));
    const fn = this.tmp(`f_${name.replace(/[^A-Za-z0-9_]/g, '_')}_`);
    this.emit(`const ${fn} = (${[tc, ...params].join(', ')}) => {`);
    this.emit(body.code);
    this.emit(`return ${body.result};`);
    this.emit('};');
    scope.vars.set(name, { kind: 'lambda', fn, node: lambda, arity: params.length, defContext: c });
  }

  /**
   * A lambda body position that jsonata's tail-call optimisation may have turned into a thunk. A thunk
   * is applied by the trampoline: its call gets `tailContext` as context and its result is returned
   * as it is, while every other value in such a position has been normalised by each enclosing node
   * (`pending`) first.
   */
  private genTail(
    node: AstNode,
    c: string,
    scope: Scope,
    tailContext: TailContext,
    pending: Pending,
  ): string {
    this.check(node);
    if (node.type === 'lambda' && node.thunk) {
      const call = node.body as AstNode;
      this.check(call);
      return this.genCall(call, c, scope, { context: tailContext, tailOf: c });
    }
    if ((node.type === 'condition' || node.type === 'block') && !node.predicate) {
      if (node.type === 'block') return this.genBlock(node, c, scope, { context: tailContext, pending });
      return this.genCondition(node, c, scope, { context: tailContext, pending });
    }
    let r = this.gen(node, c, scope);
    for (let i = pending.length - 1; i >= 0; i--) r = this.normalise(pending[i] as AstNode, r);
    return r;
  }
}

/** What a called name is. */
type Resolved =
  | { kind: 'custom'; ref: string }
  | { kind: 'native'; ref: string; def: NativeFunction }
  | { kind: 'hof'; name: string }
  | { kind: 'matcher'; name: string }
  | { kind: 'clock'; name: string }
  | { kind: 'lambda'; binding: Extract<Binding, { kind: 'lambda' }> };

/** A group-by: key and value expressions, pair by pair. */
interface Group {
  lhs: AstNode[][];
}

interface TailState {
  context: TailContext;
  pending: Pending;
}
