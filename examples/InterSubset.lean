import Mathlib

/-! Intersecting both sides of an inclusion with the same set. -/

variable {α : Type*} (s t u : Set α)

example (h : s ⊆ t) : s ∩ u ⊆ t ∩ u := by
  sorry
