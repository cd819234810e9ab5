/**
 * The web UI's build: static files in dist/ui/, served by `troupe server` and
 * `troupe ui` at `/`. Everything is bundled (no CDN: users' clusters often have
 * no internet); asset paths are absolute, since the UI's routes are paths
 * (/workflows/ID) that the server answers with index.html.
 */
import react from "@vitejs/plugin-react";
import { defineConfig } from "vite";

export default defineConfig({
  root: new URL(".", import.meta.url).pathname,
  base: "/",
  plugins: [react()],
  build: {
    outDir: new URL("../dist/ui", import.meta.url).pathname,
    emptyOutDir: true,
    chunkSizeWarningLimit: 2048,
  },
});
