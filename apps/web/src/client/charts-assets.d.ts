// Stylesheets imported by the page's modules: Bun's bundler turns each into a linked .css file.
declare module "*.css";
