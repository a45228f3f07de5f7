"""Step types, one module each: schema, executor and model transition
(base.StepType). registry.STEP_TYPES is the table everything dispatches
through; fields.py holds the validators the schemas share."""
