//! statuslab-retry against a real statuslab server: the tower policy and the reqwest middleware
//! meet `/sequence/{key}/{steps}` scenarios, and the server's record of each key's attempts
//! says whether they waited out `Retry-After`, backed off and stopped as the table says.

mod middleware;
mod policy;
mod support;
