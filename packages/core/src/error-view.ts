/**
 * The body of every error the API answers, as a TypeBox schema (errors.ts holds the typed errors
 * themselves; the API maps each code to a status). Only TypeBox here, for `@corral/core/views`.
 */
import { type Static, Type } from "@sinclair/typebox";

/**
 * `{ error: { code, message } }`, with one item per failure for errors that gather several.
 * @example
 * const body: ErrorBody = { error: { code: "SLOT_IN_USE", message: 'slot "0" overlaps slot "0,1" …' } }
 */
export const ErrorBodySchema = Type.Object(
  {
    error: Type.Object({
      code: Type.String({ description: "stable machine-readable code, e.g. NOT_FOUND, SLOT_IN_USE, VALIDATION" }),
      message: Type.String({ description: "what went wrong, for people" }),
      errors: Type.Optional(
        Type.Array(Type.Object({ status: Type.Integer(), code: Type.String(), message: Type.String() }), {
          description: "one item per failure, for errors that gather several (killing by name)",
        }),
      ),
    }),
  },
  { description: "error" },
);
/** @see ErrorBodySchema */
export type ErrorBody = Static<typeof ErrorBodySchema>;
