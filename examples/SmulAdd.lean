import Mathlib

/-! Scalar multiplication distributes over vector addition. -/

variable {K V : Type*} [Field K] [AddCommGroup V] [Module K V]

example (a : K) (u v : V) : a • (u + v) = a • u + a • v := by
  sorry
