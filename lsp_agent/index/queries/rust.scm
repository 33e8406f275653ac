; Tags for Rust. Derived from tree-sitter-rust's tags.scm, plus use declarations and type uses.
; Functions inside impl/trait blocks become methods in symbols.py (by their enclosing scope).

(struct_item name: (type_identifier) @name) @definition.struct
(enum_item name: (type_identifier) @name) @definition.enum
(union_item name: (type_identifier) @name) @definition.struct
(type_item name: (type_identifier) @name) @definition.type
(function_item name: (identifier) @name) @definition.function
(function_signature_item name: (identifier) @name) @definition.method
(trait_item name: (type_identifier) @name) @definition.trait
(mod_item name: (identifier) @name) @definition.module
(macro_definition name: (identifier) @name) @definition.macro
(const_item name: (identifier) @name) @definition.constant
(static_item name: (identifier) @name) @definition.constant
(impl_item type: (type_identifier) @name) @definition.impl

(call_expression function: (identifier) @name) @reference.call
(call_expression function: (field_expression field: (field_identifier) @name)) @reference.call
(call_expression function: (scoped_identifier name: (identifier) @name)) @reference.call
(macro_invocation macro: (identifier) @name) @reference.call

(impl_item trait: (type_identifier) @name) @reference.type
(type_identifier) @name @reference.type

(use_declaration argument: [
  (identifier) @name
  (scoped_identifier name: (identifier) @name)
  (use_as_clause path: [(identifier) (scoped_identifier name: (identifier))] @name)
]) @reference.import
(use_list [
  (identifier) @name
  (scoped_identifier name: (identifier) @name)
]) @reference.import
