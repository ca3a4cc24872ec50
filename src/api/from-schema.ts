// Derives a TypeScript type from a `const` structural schema, so the CRD schema in crd.ts is the one
// source of the API's shape. Covers the keywords crd.ts uses: object properties and required,
// maps (additionalProperties), arrays, string enums, strings, integers and booleans.

export type FromSchema<S> = S extends { readonly type: "object"; readonly properties: infer P }
  ? ObjectFromSchema<P, S extends { readonly required: readonly (infer R)[] } ? R : never>
  : S extends { readonly type: "object"; readonly additionalProperties: infer V }
    ? Record<string, FromSchema<V>>
    : S extends { readonly type: "object" }
      ? Record<string, unknown>
      : S extends { readonly type: "array"; readonly items: infer I }
        ? FromSchema<I>[]
        : S extends { readonly enum: readonly (infer E)[] }
          ? E
          : S extends { readonly type: "string" }
            ? string
            : S extends { readonly type: "integer" | "number" }
              ? number
              : S extends { readonly type: "boolean" }
                ? boolean
                : never;

type ObjectFromSchema<P, R> = Flatten<
  { -readonly [K in Extract<keyof P, R>]: FromSchema<P[K]> } & {
    -readonly [K in Exclude<keyof P, R>]?: FromSchema<P[K]>;
  }
>;

/** Shows `{ a: string; b?: number }` in editors instead of an intersection of mapped types. */
type Flatten<T> = { [K in keyof T]: T[K] } & {};
