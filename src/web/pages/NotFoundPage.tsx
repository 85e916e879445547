import { Link } from '../router.tsx';

export function NotFoundPage() {
  return (
    <section className="card narrow">
      <h1>Page not found</h1>
      <p>There is nothing at this address.</p>
      <p>
        <Link href="/">Back to your sessions</Link>
      </p>
    </section>
  );
}
