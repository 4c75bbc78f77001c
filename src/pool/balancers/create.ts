import type { BalancingAlgorithm } from '../../config/schema.ts';
import type { Balancer, Candidate } from './balancer.ts';
import { ConsistentHash } from './consistent-hash.ts';
import type { InFlight } from './in-flight.ts';
import { LeastConnections } from './least-connections.ts';
import { PowerOfTwoChoices } from './power-of-two.ts';
import { SmoothWeightedRoundRobin } from './smooth-wrr.ts';

export function createBalancer<T extends Candidate>(algorithm: BalancingAlgorithm, inFlight: InFlight): Balancer<T> {
  switch (algorithm) {
    case 'weighted_round_robin':
      return new SmoothWeightedRoundRobin<T>();
    case 'least_connections':
      return new LeastConnections<T>(inFlight);
    case 'random':
      return new PowerOfTwoChoices<T>(inFlight);
    case 'consistent_hash':
      return new ConsistentHash<T>();
  }
}
