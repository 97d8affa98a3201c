use fogkit::prelude::*;
