export { FilterSyntaxError, parseFilter, tokenize, type Node } from './parse.js';
export { FILTER_FIELDS, checkFilter, compileFilter, type CompiledFilter, type FilterEnv } from './compile.js';
